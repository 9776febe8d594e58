// Package config loads Beehive's configuration: defaults, then a YAML file,
// then BEEHIVE_* environment variables, then flags (applied by cmd).
//
// Environment names follow the YAML path: http.addr -> BEEHIVE_HTTP_ADDR,
// auth.access_ttl -> BEEHIVE_AUTH_ACCESS_TTL. Lists are comma-separated.
package config

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/logging"
	"github.com/beehive-im/beehive/user"
)

// Config is the whole configuration of a beehive process.
type Config struct {
	// DataDir holds the embedded store and broker log (embedded mode).
	DataDir string `yaml:"data_dir"`
	// Mode is "embedded" (one process: beehive dev), "static" (beehive
	// serve <service> finding its peers at the addresses of Peers, each
	// with an embedded store) or "distributed" (Cassandra, Redis, Kafka,
	// Consul). Empty, the default, is embedded for beehive dev and static
	// for beehive serve (ModeFor).
	Mode string     `yaml:"mode"`
	Log  LogConfig  `yaml:"log"`
	HTTP HTTPConfig `yaml:"http"`
	GRPC GRPCConfig `yaml:"grpc"`
	// ServiceToken is the shared internal credential for internal RPCs.
	ServiceToken string `yaml:"service_token"`
	// Peers maps service name -> gRPC addresses (static discovery).
	Peers map[string][]string `yaml:"peers"`

	Auth     AuthConfig     `yaml:"auth"`
	User     UserConfig     `yaml:"user"`
	Group    GroupConfig    `yaml:"group"`
	Message  MessageConfig  `yaml:"message"`
	Gateway  GatewayConfig  `yaml:"gateway"`
	Pusher   PusherConfig   `yaml:"pusher"`
	Query    QueryConfig    `yaml:"query"`
	Presence PresenceConfig `yaml:"presence"`

	Kafka     KafkaConfig     `yaml:"kafka"`
	Cassandra CassandraConfig `yaml:"cassandra"`
	Redis     RedisConfig     `yaml:"redis"`
	Consul    ConsulConfig    `yaml:"consul"`
}

type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or logfmt.
	Format string `yaml:"format"`
}

type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// BodyLimit is the largest request body in bytes (default
	// httpx.DefaultBodyLimit, 1 MiB).
	BodyLimit int64 `yaml:"body_limit"`
	// AdvertiseAddr is what discovery registers (defaults to Addr).
	AdvertiseAddr string `yaml:"advertise_addr"`
	// DebugAddr serves Go's /debug/pprof profiles on an address of its own
	// (keep it on loopback); empty, the default, serves none.
	DebugAddr string `yaml:"debug_addr"`
}

type GRPCConfig struct {
	Addr          string `yaml:"addr"`
	AdvertiseAddr string `yaml:"advertise_addr"`
	// MaxMessageSize is the largest gRPC message in bytes a server receives
	// and a client sends or receives (default grpcx.DefaultMaxMessageSize,
	// 4 MiB). It must exceed the largest send the edge forwards.
	MaxMessageSize int `yaml:"max_message_size"`
}

type AuthConfig struct {
	AccessTTL  time.Duration `yaml:"access_ttl"`
	RefreshTTL time.Duration `yaml:"refresh_ttl"`
	// SigningKeys are Ed25519 private keys (base64 of the 32-byte seed),
	// by kid; ActiveKid signs, every key verifies. Shared by every auth
	// instance. Empty in embedded mode: a key is generated and kept in the
	// data dir.
	SigningKeys map[string]string `yaml:"signing_keys"`
	ActiveKid   string            `yaml:"active_kid"`
	Issuer      string            `yaml:"issuer"`
	BcryptCost  int               `yaml:"bcrypt_cost"`
	// Login attempts allowed per IP and per account per minute.
	LoginPerIPPerMinute      int `yaml:"login_per_ip_per_minute"`
	LoginPerAccountPerMinute int `yaml:"login_per_account_per_minute"`
	PasswordMinLength        int `yaml:"password_min_length"`
}

type UserConfig struct {
	// MessagePolicy: "anyone" (default; unless blocked) or "friends".
	MessagePolicy string `yaml:"message_policy"`
}

type GroupConfig struct {
	// MaxMembers bounds a group's size (default group.DefaultMaxMembers,
	// 10,000).
	MaxMembers int `yaml:"max_members"`
}

type MessageConfig struct {
	// TextLimit bounds text content in bytes of UTF-8, as decoded (default
	// message.DefaultTextLimit, 16 KiB).
	TextLimit int `yaml:"text_limit"`
	// ContentLimit bounds the content of the other types (image, file,
	// custom: a JSON object) in bytes as sent (default
	// message.DefaultObjectLimit, 64 KiB).
	ContentLimit int `yaml:"content_limit"`
	// MaxMentions bounds the mentions of one message (default
	// message.DefaultMaxMentions, 100).
	MaxMentions int `yaml:"max_mentions"`
	// RecallWindow is how long a sender may recall (default
	// message.DefaultRecallWindow, 2 min).
	RecallWindow   time.Duration `yaml:"recall_window"`
	SensitiveWords []string      `yaml:"sensitive_words"`
	// SensitiveMode: "mask" (default) or "reject".
	SensitiveMode string `yaml:"sensitive_mode"`
	// SeqLeaseBlock is how many seqs one durable high-water lease covers.
	SeqLeaseBlock int64 `yaml:"seq_lease_block"`
	// SendPerUserPerSecond and SendBurst bound sends per user at the
	// gateway (defaults gateway.DefaultSendsPerSecond, 50, and
	// gateway.DefaultSendBurst, 200).
	SendPerUserPerSecond float64 `yaml:"send_per_user_per_second"`
	SendBurst            int     `yaml:"send_burst"`
}

type GatewayConfig struct {
	// ID identifies this gateway instance to the pusher.
	ID             string   `yaml:"id"`
	AllowedOrigins []string `yaml:"allowed_origins"`
	// FrameLimit is the largest client WebSocket frame in bytes (default
	// gateway.DefaultFrameLimit, 256 KiB). It must exceed the largest send
	// frame the message limits allow (gateway.SendFrameBound).
	FrameLimit     int64         `yaml:"frame_limit"`
	SendQueue      int           `yaml:"send_queue"`
	PingInterval   time.Duration `yaml:"ping_interval"`
	PerIPPerSecond float64       `yaml:"per_ip_per_second"`
	// FramesPerSecond and FrameBurst bound every client frame of one
	// socket; a socket beyond them is closed (4008). Defaults
	// gateway.DefaultFramesPerSecond (200) and gateway.DefaultFrameBurst
	// (1000).
	FramesPerSecond float64 `yaml:"frames_per_second"`
	FrameBurst      int     `yaml:"frame_burst"`
	// SyncHold is how long a new socket holds live pushes for the
	// client's first sync, so nothing it syncs arrives twice or out of
	// order (default gateway.DefaultSyncHold, 5 s; negative: no hold).
	SyncHold time.Duration `yaml:"sync_hold"`
}

type PusherConfig struct {
	WebhookURL    string `yaml:"webhook_url"`
	WebhookSecret string `yaml:"webhook_secret"`
	FCMEndpoint   string `yaml:"fcm_endpoint"`
	FCMProject    string `yaml:"fcm_project"`
	FCMToken      string `yaml:"fcm_token"`
	APNsEndpoint  string `yaml:"apns_endpoint"`
	APNsKeyID     string `yaml:"apns_key_id"`
	APNsTeamID    string `yaml:"apns_team_id"`
	APNsKeyPEM    string `yaml:"apns_key_pem"`
	APNsTopic     string `yaml:"apns_topic"`
}

type QueryConfig struct {
	// PageSize is the history and conversation-list page when a client
	// names no limit (default query.DefaultPageSize, 50); MaxPageSize the
	// largest limit it may name (default query.MaxPageSize, 200).
	PageSize    int `yaml:"page_size"`
	MaxPageSize int `yaml:"max_page_size"`
}

type PresenceConfig struct {
	HeartbeatTTL time.Duration `yaml:"heartbeat_ttl"`
}

type KafkaConfig struct {
	// Brokers empty in embedded mode: the in-process broker is used.
	Brokers           []string      `yaml:"brokers"`
	Partitions        int           `yaml:"partitions"`
	ReplicationFactor int           `yaml:"replication_factor"`
	BatchTimeout      time.Duration `yaml:"batch_timeout"`
	SessionTimeout    time.Duration `yaml:"session_timeout"`
}

type CassandraConfig struct {
	Hosts       []string `yaml:"hosts"`
	Keyspace    string   `yaml:"keyspace"`
	Consistency string   `yaml:"consistency"`
	// ReplicationFactor of the keyspace `beehive migrate` creates.
	ReplicationFactor int `yaml:"replication_factor"`
}

type RedisConfig struct {
	Addr      string `yaml:"addr"`
	KeyPrefix string `yaml:"key_prefix"`
}

type ConsulConfig struct {
	Addr string `yaml:"addr"`
}

// Default returns the documented defaults. Every limit's default is the
// constant of the domain that enforces it.
func Default() Config {
	return Config{
		DataDir: ".data/beehive",
		Log:     LogConfig{Level: logging.LevelInfo, Format: logging.FormatJSON},
		HTTP:    HTTPConfig{Addr: ":8080", BodyLimit: httpx.DefaultBodyLimit},
		GRPC:    GRPCConfig{Addr: ":9090", MaxMessageSize: grpcx.DefaultMaxMessageSize},
		Auth: AuthConfig{
			AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour, Issuer: "beehive",
			BcryptCost: 10, LoginPerIPPerMinute: 30, LoginPerAccountPerMinute: 10, PasswordMinLength: 8,
		},
		User:  UserConfig{MessagePolicy: user.PolicyAnyone},
		Group: GroupConfig{MaxMembers: group.DefaultMaxMembers},
		Message: MessageConfig{
			TextLimit: message.DefaultTextLimit, ContentLimit: message.DefaultObjectLimit, MaxMentions: message.DefaultMaxMentions,
			RecallWindow: message.DefaultRecallWindow, SensitiveMode: string(message.FilterMask), SeqLeaseBlock: 1000,
			SendPerUserPerSecond: gateway.DefaultSendsPerSecond, SendBurst: gateway.DefaultSendBurst,
		},
		Gateway: GatewayConfig{
			ID: "gw-1", FrameLimit: gateway.DefaultFrameLimit, SendQueue: 256, PingInterval: 30 * time.Second, PerIPPerSecond: 100,
			FramesPerSecond: gateway.DefaultFramesPerSecond, FrameBurst: gateway.DefaultFrameBurst, SyncHold: gateway.DefaultSyncHold,
		},
		Query:     QueryConfig{PageSize: query.DefaultPageSize, MaxPageSize: query.MaxPageSize},
		Presence:  PresenceConfig{HeartbeatTTL: 90 * time.Second},
		Kafka:     KafkaConfig{Partitions: 8, ReplicationFactor: 1, BatchTimeout: 2 * time.Millisecond, SessionTimeout: 6 * time.Second},
		Cassandra: CassandraConfig{Hosts: []string{"127.0.0.1:9042"}, Keyspace: "beehive", Consistency: "LOCAL_QUORUM", ReplicationFactor: 1},
		Redis:     RedisConfig{Addr: "127.0.0.1:6379", KeyPrefix: "beehive:"},
		Consul:    ConsulConfig{Addr: "127.0.0.1:8500"},
	}
}

// Load returns defaults overlaid by the YAML file at path (if not empty)
// and then by BEEHIVE_* variables from environ.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config %s: %w", path, err)
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("parse config %s: %w", path, err)
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if i := strings.IndexByte(kv, '='); i > 0 && strings.HasPrefix(kv, "BEEHIVE_") {
			env[kv[:i]] = kv[i+1:]
		}
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), "BEEHIVE", env); err != nil {
		return c, err
	}
	return c, nil
}

func applyEnv(v reflect.Value, prefix string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, env); err != nil {
				return err
			}
			continue
		}
		raw, ok := env[name]
		if !ok {
			continue
		}
		if err := setValue(fv, raw); err != nil {
			return fmt.Errorf("%s=%q: %w", name, raw, err)
		}
	}
	return nil
}

// Set assigns the string form raw to the field of c at the YAML path
// (used for flags like --http.addr).
func Set(c *Config, path, raw string) error {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(path, ".") {
		found := false
		for i := 0; i < v.NumField(); i++ {
			if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == part {
				v = v.Field(i)
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("unknown config key %q", path)
		}
	}
	return setValue(v, raw)
}

func setValue(fv reflect.Value, raw string) error {
	switch fv.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type")
		}
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		fv.Set(reflect.ValueOf(parts))
	case reflect.Map:
		// peers: "user=host:port|host:port,auth=host:port"; signing keys: "kid=seed,..."
		m := reflect.MakeMap(fv.Type())
		for _, kv := range strings.Split(raw, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return fmt.Errorf("want key=value pairs")
			}
			switch fv.Type().Elem().Kind() {
			case reflect.String:
				m.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(val))
			case reflect.Slice:
				m.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(strings.Split(val, "|")))
			default:
				return fmt.Errorf("unsupported map type")
			}
		}
		fv.Set(m)
	default:
		return fmt.Errorf("unsupported type %s", fv.Type())
	}
	return nil
}
