// Package docker holds the deployment files; this test validates the Nomad
// jobs by parsing them (no Nomad build can be fetched on these machines).
package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

var services = []string{"auth", "user", "group", "message", "presence", "gateway", "pusher", "query"}

func TestNomadJobsParseAndNameEveryService(t *testing.T) {
	p := hclparse.NewParser()
	for _, svc := range services {
		path := filepath.Join("nomad", svc+".nomad.hcl")
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", path, diags.Error())
		}
		body, diags := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "job", LabelNames: []string{"name"}}}})
		if diags.HasErrors() || len(body.Blocks) != 1 {
			t.Fatalf("%s: want exactly one job block: %s", path, diags.Error())
		}
		if got := body.Blocks[0].Labels[0]; got != "beehive-"+svc {
			t.Errorf("%s: job named %q, want beehive-%s", path, got, svc)
		}
		raw, _ := os.ReadFile(path)
		if !strings.Contains(string(raw), `"serve", "`+svc+`"`) {
			t.Errorf("%s does not run `beehive serve %s`", path, svc)
		}
	}
	entries, _ := os.ReadDir("nomad")
	if len(entries) != len(services) {
		t.Errorf("nomad/ has %d files, want one per service (%d)", len(entries), len(services))
	}
}
