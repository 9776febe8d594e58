package config

import (
	"strings"
	"testing"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/grpcx"
)

func TestValidateRefusesEachBadSettingNamingItsKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(c *Config)
		key  string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"every mode", func(c *Config) { c.Mode = ModeDistributed }, ""},
		{"static mode", func(c *Config) { c.Mode = ModeStatic }, ""},
		{"log level in capitals", func(c *Config) { c.Log.Level = "DEBUG" }, ""},
		{"unknown mode", func(c *Config) { c.Mode = "cluster" }, "mode"},
		{"unknown log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level"},
		{"unknown log format", func(c *Config) { c.Log.Format = "text" }, "log.format"},
		{"unknown message policy", func(c *Config) { c.User.MessagePolicy = "nobody" }, "user.message_policy"},
		{"unknown sensitive mode", func(c *Config) { c.Message.SensitiveMode = "block" }, "message.sensitive_mode"},
		{"zero content limit", func(c *Config) { c.Message.ContentLimit = 0 }, "message.content_limit"},
		{"negative frame limit", func(c *Config) { c.Gateway.FrameLimit = -1 }, "gateway.frame_limit"},
		{"zero frame rate", func(c *Config) { c.Gateway.FramesPerSecond = 0 }, "gateway.frames_per_second"},
		{"page size above max", func(c *Config) { c.Query.PageSize = 300 }, "query.page_size"},
		{"the old 64 KiB frame limit", func(c *Config) { c.Gateway.FrameLimit = 64 << 10 }, "gateway.frame_limit"},
		{"content limit beyond the frame", func(c *Config) { c.Message.ContentLimit = int(c.Gateway.FrameLimit) }, "gateway.frame_limit"},
		{"text limit beyond the frame", func(c *Config) { c.Message.TextLimit = int(c.Gateway.FrameLimit) / 6 }, "gateway.frame_limit"},
		{"body limit below a send", func(c *Config) { c.HTTP.BodyLimit = 64 << 10 }, "http.body_limit"},
		{"gRPC message below the frame", func(c *Config) { c.GRPC.MaxMessageSize = int(c.Gateway.FrameLimit) }, "grpc.max_message_size"},
		{"gRPC message below the body", func(c *Config) { c.HTTP.BodyLimit = 8 << 20 }, "grpc.max_message_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(&c)
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want %s refused", tc.key)
			}
			if !strings.HasPrefix(err.Error(), tc.key+" (") || !strings.Contains(err.Error(), envName(tc.key)) {
				t.Fatalf("error does not start with the key %s and name its variable: %v", tc.key, err)
			}
		})
	}
}

func TestValidateNamesTheAllowedModes(t *testing.T) {
	c := Default()
	c.Mode = "cluster"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "embedded, static, distributed") {
		t.Fatalf("want the allowed values named, got %v", err)
	}
}

func TestDefaultsAreTheDomainConstantsAndFitTogether(t *testing.T) {
	c := Default()
	if c.Gateway.FrameLimit != gateway.DefaultFrameLimit || c.Message.ContentLimit != message.DefaultObjectLimit ||
		c.Message.TextLimit != message.DefaultTextLimit || c.GRPC.MaxMessageSize != grpcx.DefaultMaxMessageSize {
		t.Fatalf("config defaults drifted from the domain constants: %+v %+v %+v", c.Gateway, c.Message, c.GRPC)
	}
	send := c.SendFrameBound()
	// Text escaped at worst (6 bytes a byte) outweighs object content.
	if min := int64(6*message.DefaultTextLimit + 2); send <= min {
		t.Fatalf("send frame bound %d does not cover escaped text of %d", send, min)
	}
	if send > c.Gateway.FrameLimit {
		t.Fatalf("default frame limit %d below the send frame bound %d", c.Gateway.FrameLimit, send)
	}
	if c.Gateway.FrameLimit <= int64(c.Message.ContentLimit) {
		t.Fatalf("default frame limit %d does not exceed the content limit %d", c.Gateway.FrameLimit, c.Message.ContentLimit)
	}
}

func TestModeForCommand(t *testing.T) {
	for cmd, want := range map[string]string{"dev": ModeEmbedded, "serve": ModeStatic, "replay": ModeEmbedded, "migrate": ModeEmbedded} {
		if got := ModeFor(cmd); got != want {
			t.Errorf("ModeFor(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestValidateTakesEmptyEnumsAsTheirDefaults(t *testing.T) {
	c := Default()
	c.Mode, c.Log.Level, c.Log.Format, c.User.MessagePolicy, c.Message.SensitiveMode = "", "", "", "", ""
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
