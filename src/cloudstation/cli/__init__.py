"""The ``cs`` command line: thin click commands over the layers below; heavy imports happen lazily."""
