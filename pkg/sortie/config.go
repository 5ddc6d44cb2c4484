package sortie

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

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
		return o, fmt.Errorf("config %s: %w", path, err)
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
