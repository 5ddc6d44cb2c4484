package hcloudfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// erratum corrects one place where the published spec is stricter than the
// real API, so that requests hcloud-go sends and the API accepts do not fail
// validation. Each is applied to the spec before it is parsed.
type erratum struct {
	why  string
	path []string // from the document root to the schema to replace
	with map[string]any
}

var (
	idOrName = map[string]any{"type": []any{"string", "integer"}}
	// createServerProps is the properties of the create-server request body.
	createServerProps = []string{"paths", "/servers", "post", "requestBody", "content",
		"application/json", "schema", "properties"}
)

var errata = []erratum{
	{
		why: "ssh_keys takes SSH key IDs (integers) or names, as its description says; " +
			"the schema allows only strings, and hcloud-go sends IDs",
		path: append(append([]string{}, createServerProps...), "ssh_keys", "items"),
		with: idOrName,
	},
	{
		why: "server_type takes an ID or a name; hcloud-go sends an integer when it " +
			"has the server type's ID",
		path: append(append([]string{}, createServerProps...), "server_type"),
		with: idOrName,
	},
	{
		why:  "image takes an ID or a name; hcloud-go sends an integer when it has the image's ID",
		path: append(append([]string{}, createServerProps...), "image"),
		with: idOrName,
	},
}

// applyErrata returns the spec with every erratum applied. An erratum whose
// path no longer exists is an error: the spec changed and the erratum must be
// looked at again.
func applyErrata(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if err := upperCaseRanges(doc); err != nil {
		return nil, err
	}
	for _, e := range errata {
		parent, err := walk(doc, e.path[:len(e.path)-1])
		if err != nil {
			return nil, fmt.Errorf("erratum %q: %w", e.why, err)
		}
		old, ok := parent[e.path[len(e.path)-1]].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("erratum %q: %v not found", e.why, e.path)
		}
		fixed := map[string]any{}
		for k, v := range old {
			fixed[k] = v
		}
		for k, v := range e.with {
			fixed[k] = v
		}
		parent[e.path[len(e.path)-1]] = fixed
	}
	return json.Marshal(doc)
}

func walk(doc map[string]any, path []string) (map[string]any, error) {
	cur := doc
	for i, key := range path {
		next, ok := cur[key].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v not found", path[:i+1])
		}
		cur = next
	}
	return cur, nil
}

// upperCaseRanges renames the range response codes "4xx" and "5xx" that the
// spec uses to "4XX" and "5XX", the spelling OpenAPI defines and the only one
// libopenapi-validator matches; without it every error answer would be
// reported as undocumented.
func upperCaseRanges(doc map[string]any) error {
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		return fmt.Errorf("spec has no paths")
	}
	for _, item := range paths {
		ops, _ := item.(map[string]any)
		for _, op := range ops {
			opMap, _ := op.(map[string]any)
			responses, _ := opMap["responses"].(map[string]any)
			for code, r := range responses {
				if up := strings.ToUpper(code); up != code && strings.HasSuffix(up, "XX") {
					delete(responses, code)
					responses[up] = r
				}
			}
		}
	}
	return nil
}
