// Writes expected.json: what Go's text/template prints for each template
// of cases.json over data.json, with the functions the docker CLI adds.
//
// The data is decoded the way docker's values look to a template: an
// object whose keys are all exported Go names becomes a struct (fields in
// the file's order), any other object a map; integers are ints, other
// numbers float64; an array of strings (or an empty one) is a []string.
//
// Run from this folder: go run . (writes ../expected.json).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"text/template"
	"unicode"
)

func value(dec *json.Decoder) interface{} {
	tok, err := dec.Token()
	if err != nil {
		panic(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return object(dec)
		}
		return array(dec)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return int(i)
		}
		f, _ := t.Float64()
		return f
	default:
		return t
	}
}

func exported(k string) bool {
	for i, r := range k {
		if i == 0 && !unicode.IsUpper(r) {
			return false
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			return false
		}
	}
	return k != ""
}

func object(dec *json.Decoder) interface{} {
	var keys []string
	var vals []interface{}
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		vals = append(vals, value(dec))
	}
	dec.Token()
	structLike := len(keys) > 0
	for _, k := range keys {
		structLike = structLike && exported(k)
	}
	if !structLike {
		m := map[string]interface{}{}
		for i, k := range keys {
			m[k] = vals[i]
		}
		return m
	}
	fields := make([]reflect.StructField, len(keys))
	for i, k := range keys {
		t := reflect.TypeOf(vals[i])
		if t == nil {
			t = reflect.TypeOf((*interface{})(nil)).Elem()
		}
		fields[i] = reflect.StructField{Name: k, Type: t}
	}
	s := reflect.New(reflect.StructOf(fields)).Elem()
	for i := range keys {
		if vals[i] != nil {
			s.Field(i).Set(reflect.ValueOf(vals[i]))
		}
	}
	return s.Interface()
}

func array(dec *json.Decoder) interface{} {
	var vals []interface{}
	for dec.More() {
		vals = append(vals, value(dec))
	}
	dec.Token()
	strs := []string{}
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			return vals
		}
		strs = append(strs, s)
	}
	return strs
}

// The functions the docker CLI adds to its templates.
var funcs = template.FuncMap{
	"json": func(v interface{}) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": strings.Title,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}

type result struct {
	Template string  `json:"template"`
	Output   *string `json:"output,omitempty"`
	Error    *string `json:"error,omitempty"`
}

func main() {
	raw, err := os.ReadFile("../data.json")
	if err != nil {
		panic(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	data := value(dec)
	var cases []string
	raw, err = os.ReadFile("../cases.json")
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		panic(err)
	}
	var out []result
	for _, c := range cases {
		r := result{Template: c}
		t, err := template.New("").Funcs(funcs).Parse(c)
		var buf bytes.Buffer
		if err == nil {
			err = t.Execute(&buf, data)
		}
		if err != nil {
			e := err.Error()
			r.Error = &e
		} else {
			s := buf.String()
			r.Output = &s
		}
		out = append(out, r)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile("../expected.json", append(b, '\n'), 0o644); err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "%d cases written\n", len(out))
}
