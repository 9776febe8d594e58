package pusher

import "context"

// Store holds device registrations and the record of pushes that
// succeeded. Backends: PebbleStore (embedded); a Cassandra backend must pass
// the same contract suite (pusher/storetest).
type Store interface {
	// PutDevice creates or replaces userID's device d.DeviceID. It refuses
	// a new device beyond MaxDevicesPerUser with ErrTooManyDevices.
	PutDevice(ctx context.Context, userID string, d Device) error
	// DeleteDevice removes the device; an unknown one is no error.
	DeleteDevice(ctx context.Context, userID, deviceID string) error
	// GetDevice returns one registration.
	GetDevice(ctx context.Context, userID, deviceID string) (Device, bool, error)
	// ListDevices returns userID's registrations ordered by device id.
	ListDevices(ctx context.Context, userID string) ([]Device, error)
	// MarkPushed records, durably, that messageID was pushed to the device.
	MarkPushed(ctx context.Context, messageID, userID, deviceID string) error
	// Pushed reports whether MarkPushed was recorded.
	Pushed(ctx context.Context, messageID, userID, deviceID string) (bool, error)
}
