package app

import (
	"context"
	"io"

	"github.com/beehive-im/beehive/shared/cassandra"
	"github.com/beehive-im/beehive/shared/config"
)

// Migrate applies the Cassandra migrations of shared/cassandra/migrations.
func Migrate(ctx context.Context, cfg config.Config, out io.Writer) error {
	applied, err := cassandra.Migrate(ctx, cassandraConfig(cfg), cfg.Cassandra.ReplicationFactor)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		printf(out, "keyspace %s is up to date\n", cfg.Cassandra.Keyspace)
		return nil
	}
	printf(out, "applied migrations %v to keyspace %s\n", applied, cfg.Cassandra.Keyspace)
	return nil
}

func cassandraConfig(cfg config.Config) cassandra.Config {
	return cassandra.Config{Hosts: cfg.Cassandra.Hosts, Keyspace: cfg.Cassandra.Keyspace, Consistency: cfg.Cassandra.Consistency}
}
