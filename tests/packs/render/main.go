// Command render renders a nomad-pack pack the way nomad-pack's v2 renderer does, without nomad-pack:
// Go text/template with "[[" "]]" delimiters, missingkey=zero, the sprig text functions, nomad-pack's
// var / must_var / vars / meta lookups (dotted paths into the variables) and toStringList; templates
// whose file name starts with "_" are parsed but not rendered; "<no value>" is removed from the output.
//
// Usage: render PACK_DIR INPUT_JSON, where INPUT_JSON is {"vars": {...every variable...}, "meta": {...}}
// (variables already merged with their defaults, as nomad-pack passes them). Whole numbers become int
// and lists of objects []map[string]any, as nomad-pack's cty conversion makes them.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	sprig "github.com/Masterminds/sprig"
)

type packContext struct {
	vars map[string]any
	meta map[string]any
}

func lookup(keys []string, m map[string]any) (any, error) {
	value, found := m[keys[0]]
	if !found {
		return nil, fmt.Errorf("key %s not found", keys[0])
	}
	if len(keys) == 1 {
		return value, nil
	}
	next, ok := value.(map[string]any)
	if !ok {
		return nil, errors.New("encountered non-traversable key while traversing")
	}
	return lookup(keys[1:], next)
}

func mustVar(key string, p packContext) (any, error) { return lookup(strings.Split(key, "."), p.vars) }

func getVar(key string, p packContext) any {
	if v, err := mustVar(key, p); err == nil {
		return v
	}
	return ""
}

func getMeta(key string, p packContext) any {
	if v, err := lookup(strings.Split(key, "."), p.meta); err == nil {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return ""
}

func toStringList(l any) (string, error) {
	var out strings.Builder
	out.WriteRune('[')
	switch tl := l.(type) {
	case []any:
		for i, v := range tl {
			if i > 0 {
				out.WriteString(", ")
			}
			out.WriteString(fmt.Sprintf("%q", v))
		}
	default:
		out.WriteString(fmt.Sprintf("%q", l))
	}
	out.WriteRune(']')
	return out.String(), nil
}

// convert turns decoded JSON into the Go values nomad-pack hands to templates.
func convert(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return int(i)
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, item := range t {
			out[k] = convert(item)
		}
		return out
	case []any:
		items := make([]any, len(t))
		maps := make([]map[string]any, 0, len(t))
		for i, item := range t {
			items[i] = convert(item)
			if m, ok := items[i].(map[string]any); ok {
				maps = append(maps, m)
			}
		}
		if len(t) > 0 && len(maps) == len(t) {
			return maps
		}
		return items
	}
	return v
}

func run(packDir, inputPath string) error {
	raw, err := os.ReadFile(inputPath)
	if err != nil {
		return err
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var input struct {
		Vars map[string]any `json:"vars"`
		Meta map[string]any `json:"meta"`
	}
	if err := decoder.Decode(&input); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	ctx := packContext{vars: convert(input.Vars).(map[string]any), meta: convert(input.Meta).(map[string]any)}

	funcs := template.FuncMap{}
	for name, fn := range sprig.TxtFuncMap() {
		funcs[name] = fn
	}
	funcs["var"] = getVar
	funcs["must_var"] = mustVar
	funcs["vars"] = func(p packContext) map[string]any { return p.vars }
	funcs["meta"] = getMeta
	funcs["toStringList"] = toStringList

	files, err := filepath.Glob(filepath.Join(packDir, "templates", "*.tpl"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	tpl := template.New("pack").Funcs(funcs).Delims("[[", "]]").Option("missingkey=zero")
	for _, file := range files {
		content, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if _, err := tpl.New(filepath.Base(file)).Parse(string(content)); err != nil {
			return err
		}
	}
	for _, file := range files {
		name := filepath.Base(file)
		if strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".nomad.tpl") {
			continue
		}
		var buf strings.Builder
		if err := tpl.ExecuteTemplate(&buf, name, ctx); err != nil {
			return fmt.Errorf("failed to render %s: %w", name, err)
		}
		fmt.Print(strings.ReplaceAll(buf.String(), "<no value>", ""))
	}
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: render PACK_DIR INPUT_JSON")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}
