package test

// The HTTP reference (docs/openapi.yaml) must keep every route of
// PROTOCOL.md, with the shapes PROTOCOL.md promises. These tests read the
// file only; they need no server.

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const openAPIPath = "../docs/openapi.yaml"

// protocolRoutes are the HTTP routes PROTOCOL.md names (path parameters as
// it writes them). Add a route here when PROTOCOL.md gains one.
var protocolRoutes = []string{
	"POST /v1/auth/register",
	"POST /v1/auth/login",
	"POST /v1/auth/refresh",
	"POST /v1/auth/logout",
	"PUT /v1/auth/password",
	"PUT /v1/devices/{device_id}",
	"DELETE /v1/devices/{device_id}",
	"GET /v1/users/me",
	"PATCH /v1/users/me",
	"GET /v1/users/{id}",

	"POST /v1/friends/requests",
	"GET /v1/friends/requests",
	"POST /v1/friends/requests/{id}/accept",
	"POST /v1/friends/requests/{id}/decline",
	"GET /v1/friends",
	"DELETE /v1/friends/{user_id}",
	"PUT /v1/blocks/{user_id}",
	"DELETE /v1/blocks/{user_id}",
	"GET /v1/blocks",

	"POST /v1/groups",
	"GET /v1/groups",
	"GET /v1/groups/{id}",
	"PATCH /v1/groups/{id}",
	"DELETE /v1/groups/{id}",
	"GET /v1/groups/{id}/members",
	"POST /v1/groups/{id}/members",
	"DELETE /v1/groups/{id}/members/{user_id}",
	"PUT /v1/groups/{id}/members/{user_id}/role",
	"POST /v1/groups/{id}/transfer",
	"PUT /v1/groups/{id}/members/{user_id}/mute",
	"PUT /v1/groups/{id}/mute",

	"POST /v1/messages",
	"POST /v1/messages/{id}/recall",
	"GET /v1/conversations",
	"GET /v1/conversations/{id}",
	"PUT /v1/conversations/{id}/settings",
	"GET /v1/conversations/{id}/messages",
	"POST /v1/conversations/{id}/read",

	"GET /v1/presence",

	"GET /v1/ws",
	"GET /health",
	"GET /ready",
	"GET /metrics",
}

// protocolBodies are the top-level keys PROTOCOL.md promises in a success
// answer: wrapped resources and lists with next_cursor.
var protocolBodies = map[string][]string{
	"POST /v1/auth/register":              {"user"},
	"POST /v1/auth/login":                 {"access_token", "refresh_token", "expires_in", "user"},
	"POST /v1/auth/refresh":               {"access_token", "refresh_token", "expires_in"},
	"GET /v1/users/me":                    {"user"},
	"PATCH /v1/users/me":                  {"user"},
	"GET /v1/users/{id}":                  {"user"},
	"GET /v1/friends/requests":            {"incoming", "outgoing"},
	"GET /v1/friends":                     {"friends", "next_cursor"},
	"GET /v1/blocks":                      {"blocks", "next_cursor"},
	"POST /v1/groups":                     {"group"},
	"GET /v1/groups/{id}":                 {"group"},
	"PATCH /v1/groups/{id}":               {"group"},
	"GET /v1/groups":                      {"groups", "next_cursor"},
	"GET /v1/groups/{id}/members":         {"members", "next_cursor"},
	"POST /v1/messages":                   {"message"},
	"GET /v1/conversations":               {"conversations", "next_cursor"},
	"GET /v1/conversations/{id}/messages": {"messages", "has_more"},
	"GET /v1/presence":                    {"presence"},
}

// protocolCodes are PROTOCOL.md's stable error codes.
var protocolCodes = []string{
	"invalid_argument", "unauthenticated", "permission_denied", "not_found",
	"already_exists", "conflict", "too_large", "rate_limited", "unavailable",
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// routeKey makes "GET /v1/users/{id}" and "GET /v1/users/{user_id}" equal:
// a parameter's name is documentation, its position is the contract.
func routeKey(method, path string) string {
	return strings.ToUpper(method) + " " + pathParam.ReplaceAllString(path, "{}")
}

type openAPIDoc struct {
	OpenAPI string `yaml:"openapi"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]interface{}) {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatalf("read the HTTP reference: %v", err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s is not valid YAML: %v", openAPIPath, err)
	}
	var raw map[string]interface{}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return doc, raw
}

var httpMethods = []string{"get", "put", "post", "patch", "delete", "head", "options"}

// operations maps routeKey -> the operation object (generic YAML).
func operations(t *testing.T, raw map[string]interface{}) map[string]map[string]interface{} {
	t.Helper()
	paths, ok := raw["paths"].(map[string]interface{})
	if !ok {
		t.Fatalf("%s has no paths", openAPIPath)
	}
	ops := map[string]map[string]interface{}{}
	for p, item := range paths {
		m, ok := item.(map[string]interface{})
		if !ok {
			t.Fatalf("path %s is not an object", p)
		}
		for _, meth := range httpMethods {
			if op, ok := m[meth].(map[string]interface{}); ok {
				ops[routeKey(meth, p)] = op
			}
		}
	}
	return ops
}

// deref follows a local "$ref" in the document.
func deref(t *testing.T, raw map[string]interface{}, v interface{}) map[string]interface{} {
	t.Helper()
	for i := 0; i < 10; i++ {
		m, ok := v.(map[string]interface{})
		if !ok {
			return nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur interface{} = raw
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cm, ok := cur.(map[string]interface{})
			if !ok {
				t.Fatalf("dangling $ref %s", ref)
			}
			cur = cm[part]
		}
		if cur == nil {
			t.Fatalf("dangling $ref %s", ref)
		}
		v = cur
	}
	t.Fatal("$ref chain too long")
	return nil
}

// properties collects the property names of a schema, through allOf.
func properties(t *testing.T, raw map[string]interface{}, schema interface{}) map[string]bool {
	s := deref(t, raw, schema)
	out := map[string]bool{}
	if s == nil {
		return out
	}
	if props, ok := s["properties"].(map[string]interface{}); ok {
		for k := range props {
			out[k] = true
		}
	}
	if all, ok := s["allOf"].([]interface{}); ok {
		for _, sub := range all {
			for k := range properties(t, raw, sub) {
				out[k] = true
			}
		}
	}
	return out
}

func jsonSchemaOf(t *testing.T, raw map[string]interface{}, resp interface{}) interface{} {
	r := deref(t, raw, resp)
	if r == nil {
		return nil
	}
	content, _ := r["content"].(map[string]interface{})
	media, _ := content["application/json"].(map[string]interface{})
	if media == nil {
		return nil
	}
	return media["schema"]
}

func TestOpenAPIHasEveryProtocolRoute(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	ops := operations(t, raw)
	for _, r := range protocolRoutes {
		method, path, _ := strings.Cut(r, " ")
		if _, ok := ops[routeKey(method, path)]; !ok {
			t.Errorf("%s names %s but %s does not document it", "PROTOCOL.md", r, openAPIPath)
		}
	}
}

func TestOpenAPIPathParametersAreDeclared(t *testing.T) {
	_, raw := loadOpenAPI(t)
	paths := raw["paths"].(map[string]interface{})
	for p, item := range paths {
		want := pathParam.FindAllString(p, -1)
		im := item.(map[string]interface{})
		for _, meth := range httpMethods {
			op, ok := im[meth].(map[string]interface{})
			if !ok {
				continue
			}
			declared := map[string]bool{}
			for _, list := range []interface{}{im["parameters"], op["parameters"]} {
				ps, _ := list.([]interface{})
				for _, pv := range ps {
					prm := deref(t, raw, pv)
					if prm["in"] == "path" {
						declared[prm["name"].(string)] = true
					}
				}
			}
			for _, w := range want {
				if name := strings.Trim(w, "{}"); !declared[name] {
					t.Errorf("%s %s: path parameter %q is not declared", strings.ToUpper(meth), p, name)
				}
			}
		}
	}
}

func TestOpenAPISuccessBodiesHaveProtocolKeys(t *testing.T) {
	_, raw := loadOpenAPI(t)
	ops := operations(t, raw)
	for r, keys := range protocolBodies {
		method, path, _ := strings.Cut(r, " ")
		op, ok := ops[routeKey(method, path)]
		if !ok {
			t.Errorf("%s is missing", r)
			continue
		}
		resps, _ := op["responses"].(map[string]interface{})
		var schema interface{}
		for _, code := range []string{"200", "201"} {
			if s := jsonSchemaOf(t, raw, resps[code]); s != nil {
				schema = s
				break
			}
		}
		if schema == nil {
			t.Errorf("%s: no JSON success response", r)
			continue
		}
		props := properties(t, raw, schema)
		for _, k := range keys {
			if !props[k] {
				t.Errorf("%s: success body lacks %q (PROTOCOL.md promises it)", r, k)
			}
		}
	}
}

func TestOpenAPIErrorsUseTheProtocolErrorBody(t *testing.T) {
	_, raw := loadOpenAPI(t)
	schemas := raw["components"].(map[string]interface{})["schemas"].(map[string]interface{})
	errSchema := deref(t, raw, schemas["Error"])
	if errSchema == nil {
		t.Fatal("components.schemas.Error is missing")
	}
	for _, k := range []string{"code", "message", "field"} {
		if !properties(t, raw, errSchema)[k] {
			t.Errorf("Error schema lacks %q", k)
		}
	}
	code := deref(t, raw, errSchema["properties"].(map[string]interface{})["code"])
	enum := map[string]bool{}
	for _, v := range code["enum"].([]interface{}) {
		enum[v.(string)] = true
	}
	for _, c := range protocolCodes {
		if !enum[c] {
			t.Errorf("Error.code does not list PROTOCOL.md's code %q", c)
		}
	}
	if !properties(t, raw, schemas["ErrorBody"])["error"] {
		t.Error(`ErrorBody must be {"error": Error}`)
	}

	// Every documented 4xx/5xx answer with a JSON body is the error body
	// (/ready's 503 is its own operational shape).
	for key, op := range operations(t, raw) {
		if key == "GET /ready" {
			continue
		}
		resps, _ := op["responses"].(map[string]interface{})
		for status, resp := range resps {
			if status < "400" {
				continue
			}
			s := jsonSchemaOf(t, raw, resp)
			if s == nil {
				t.Errorf("%s %s: an error answer without the JSON error body", key, status)
				continue
			}
			if !properties(t, raw, s)["error"] {
				t.Errorf("%s %s: error answer is not the error body", key, status)
			}
		}
	}
}

// TestProtocolRouteListIsComplete guards the list above against PROTOCOL.md
// growing: every `METHOD /path` PROTOCOL.md writes must be in it. The
// contract lives beside the repository (../shared); where it is absent the
// list above is the reference and the test skips.
func TestProtocolRouteListIsComplete(t *testing.T) {
	var text []byte
	for _, p := range []string{"../../shared/PROTOCOL.md", "../shared/PROTOCOL.md"} {
		if b, err := os.ReadFile(filepath.Clean(p)); err == nil {
			text = b
			break
		}
	}
	if text == nil {
		t.Skip("PROTOCOL.md is not beside the repository")
	}
	re := regexp.MustCompile("`(GET|POST|PUT|PATCH|DELETE) (/[^`?\\s]*)")
	listed := map[string]bool{}
	for _, r := range protocolRoutes {
		m, p, _ := strings.Cut(r, " ")
		listed[routeKey(m, p)] = true
	}
	var missing []string
	for _, m := range re.FindAllStringSubmatch(string(text), -1) {
		if !listed[routeKey(m[1], m[2])] {
			missing = append(missing, m[1]+" "+m[2])
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("PROTOCOL.md names routes missing from protocolRoutes: %v", missing)
	}
}
