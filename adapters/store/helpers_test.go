package store

import (
	"time"

	"github.com/svcflow/svcflow/adapters/message"
)

var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// msg returns a message with the given ID, time offset from base and meta.
func msg(id string, offset time.Duration, meta map[string]string) *message.Message {
	return &message.Message{
		ID:          id,
		Time:        base.Add(offset),
		ContentType: "application/json",
		Payload:     []byte(`{"id":"` + id + `"}`),
		Meta:        meta,
	}
}
