"""Plugins: the four component interfaces (:mod:`.base`), the entry-point registry (:mod:`.registry`)
and the builtins (:mod:`.builtin`), registered through the ``cloudstation.plugins`` entry-point group."""
