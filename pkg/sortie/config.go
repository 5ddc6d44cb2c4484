package sortie

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"
)

// LoadConfig reads Options from a YAML file. Unknown keys are an error, so
// a typo never passes silently. Secrets are not read from the file: take
// them from the environment with FromEnv.
func LoadConfig(path string) (Options, error) {
	var o Options
	b, err := os.ReadFile(path)
	if err != nil {
		return o, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil && !errors.Is(err, io.EOF) {
		return o, fmt.Errorf("config %s: %s", path, plainYAMLError(err))
	}
	return o, nil
}

// FromEnv fills the secrets and endpoints of o from the environment, as
// Hetzner's and AWS's own tools read them: HCLOUD_TOKEN, HCLOUD_ENDPOINT,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; and SORTIE_HCLOUD_DELETE_TOKEN,
// the VMs' token of the delete self-destruct mode. Values already set win.
func (o *Options) FromEnv() {
	set := func(dst *string, env string) {
		if *dst == "" {
			*dst = os.Getenv(env)
		}
	}
	if o.Hetzner.Token == "" {
		o.Hetzner.Token = Secret(os.Getenv("HCLOUD_TOKEN"))
	}
	set(&o.Hetzner.Endpoint, "HCLOUD_ENDPOINT")
	if o.Hetzner.DeleteToken == "" {
		o.Hetzner.DeleteToken = Secret(os.Getenv("SORTIE_HCLOUD_DELETE_TOKEN"))
	}
	set(&o.Store.AccessKeyID, "AWS_ACCESS_KEY_ID")
	if o.Store.SecretAccessKey == "" {
		o.Store.SecretAccessKey = Secret(os.Getenv("AWS_SECRET_ACCESS_KEY"))
	}
}

var (
	yamlUnknownKey = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlWrongType  = regexp.MustCompile(`cannot unmarshal !!(\w+) ` + "`" + `([^` + "`" + `]*)` + "`" + ` into (\S+)`)
)

// plainYAMLError says what yaml.v3 found in the words of the config file,
// not of Go types: an unknown key, or a value of the wrong kind.
func plainYAMLError(err error) string {
	msg := yamlUnknownKey.ReplaceAllString(err.Error(), "unknown key $1 (the README's configuration section lists the keys)")
	return yamlWrongType.ReplaceAllStringFunc(msg, func(m string) string {
		sub := yamlWrongType.FindStringSubmatch(m)
		want := map[string]string{
			"time.Duration": "a duration such as 90s or 15m", "bool": "true or false", "int64": "a whole number",
			"int": "a whole number", "string": "a string", "[]string": "a list", "[]int64": "a list of numbers",
			"map[string]string": "a map of strings",
		}[sub[3]]
		if want == "" {
			want = "another kind of value"
		}
		return fmt.Sprintf("%q is not %s", sub[2], want)
	})
}
