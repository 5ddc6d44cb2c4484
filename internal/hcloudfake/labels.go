package hcloudfake

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// labelNameRE is the name segment of a label key and, when not empty, a
	// label value: 63 characters at most, alphanumeric at both ends, with
	// dashes, underscores, dots and alphanumerics between.
	labelNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?$`)
	// dnsLabelRE is one label of a DNS subdomain (the prefix of a label key).
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// hostLabelRE is one label of an RFC 1123 host name. Letters of either
	// case are allowed: the API asks for "letters, digits, periods and dashes".
	hostLabelRE = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$`)
)

const reservedLabelPrefix = "hetzner.cloud/"

// checkLabelKey reports why key is not a valid label key, or "".
func checkLabelKey(key string) string {
	prefix, name, hasPrefix := strings.Cut(key, "/")
	if !hasPrefix {
		name, prefix = prefix, ""
	}
	if !labelNameRE.MatchString(name) {
		return fmt.Sprintf("label key %q: name must be 1-63 characters, alphanumeric at both ends, with '-', '_', '.' between", key)
	}
	if hasPrefix && !isDNSSubdomain(prefix) {
		return fmt.Sprintf("label key %q: prefix must be a DNS subdomain", key)
	}
	if strings.HasPrefix(key, reservedLabelPrefix) {
		return fmt.Sprintf("label key %q: prefix %q is reserved", key, reservedLabelPrefix)
	}
	return ""
}

// checkLabelValue reports why value is not a valid label value, or "".
func checkLabelValue(value string) string {
	if value == "" || labelNameRE.MatchString(value) {
		return ""
	}
	return fmt.Sprintf("label value %q must be empty or 1-63 characters, alphanumeric at both ends, with '-', '_', '.' between", value)
}

func isDNSSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !dnsLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// checkLabels validates a whole label set and returns the messages of an
// invalid_input answer for the field "labels".
func checkLabels(labels map[string]string) []string {
	var msgs []string
	for k, v := range labels {
		if m := checkLabelKey(k); m != "" {
			msgs = append(msgs, m)
		}
		if m := checkLabelValue(v); m != "" {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// isHostname reports whether name is a valid host name per RFC 1123: labels of
// letters, digits and dashes (not at either end), at most 63 characters each,
// separated by dots, 253 characters in all.
func isHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if !hostLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// requirement is one term of a label selector.
type requirement struct {
	key    string
	op     string // "=", "!=", "exists", "!", "in", "notin"
	values []string
}

// selector is a parsed label selector: all requirements must hold.
type selector []requirement

func (s selector) matches(labels map[string]string) bool {
	for _, r := range s {
		if !r.matches(labels) {
			return false
		}
	}
	return true
}

func (r requirement) matches(labels map[string]string) bool {
	v, ok := labels[r.key]
	switch r.op {
	case "=":
		return ok && v == r.values[0]
	case "!=":
		return !ok || v != r.values[0]
	case "exists":
		return ok
	case "!":
		return !ok
	case "in":
		return ok && contains(r.values, v)
	default: // notin
		return !ok || !contains(r.values, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseSelector parses the label selector language of the API: k=v, k==v,
// k!=v, k, !k, k in (a,b), k notin (a,b), joined by commas (AND).
func parseSelector(s string) (selector, error) {
	var sel selector
	for _, term := range splitTerms(s) {
		term = strings.TrimSpace(term)
		if term == "" {
			return nil, fmt.Errorf("empty requirement in %q", s)
		}
		r, err := parseRequirement(term)
		if err != nil {
			return nil, err
		}
		if m := checkLabelKey(r.key); m != "" && !strings.HasPrefix(r.key, reservedLabelPrefix) {
			return nil, fmt.Errorf("invalid %s", m)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitTerms splits on the commas that are not inside parentheses.
func splitTerms(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var terms []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				terms = append(terms, s[start:i])
				start = i + 1
			}
		}
	}
	return append(terms, s[start:])
}

var setRE = regexp.MustCompile(`^(\S+)\s+(in|notin)\s*\(([^()]*)\)$`)

func parseRequirement(t string) (requirement, error) {
	if m := setRE.FindStringSubmatch(t); m != nil {
		var vals []string
		for _, v := range strings.Split(m[3], ",") {
			v = strings.TrimSpace(v)
			if msg := checkLabelValue(v); msg != "" {
				return requirement{}, fmt.Errorf("invalid %s", msg)
			}
			vals = append(vals, v)
		}
		return requirement{key: m[1], op: m[2], values: vals}, nil
	}
	for _, op := range []string{"!=", "==", "="} {
		if k, v, ok := strings.Cut(t, op); ok {
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if msg := checkLabelValue(v); msg != "" {
				return requirement{}, fmt.Errorf("invalid %s", msg)
			}
			if op == "==" {
				op = "="
			}
			return requirement{key: k, op: op, values: []string{v}}, nil
		}
	}
	if k, ok := strings.CutPrefix(t, "!"); ok {
		return requirement{key: strings.TrimSpace(k), op: "!"}, nil
	}
	if strings.ContainsAny(t, " ()") {
		return requirement{}, fmt.Errorf("invalid requirement %q", t)
	}
	return requirement{key: t, op: "exists"}, nil
}

// selectorParam parses the label_selector query parameter ("" selects all).
func selectorParam(s string) (selector, *apiError) {
	sel, err := parseSelector(s)
	if err != nil {
		return nil, invalidInput(fieldError{Name: "label_selector", Messages: []string{err.Error()}})
	}
	return sel, nil
}
