// Package microservicebus_test runs the microservicebus-py scenario of
// microservicebus.yaml on svcflow's bus, asserting each step of it: a
// sensor submitting readings on an interval to com, com submitting an
// email to emailhandler's custom SendEmail action, a state update that
// disables and re-enables the custom services, a logger service that
// gets state updates and broadcasts.
package microservicebus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/component"
	_ "github.com/svcflow/svcflow/adapters/component/all" // the sources, stores and steps flowrun links
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
	"github.com/svcflow/svcflow/errors"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// records returns the stored messages for a service's action, oldest
// first.
func records(t *testing.T, st store.Store, dest, action string) []*store.Record {
	t.Helper()
	recs, err := st.Search(context.Background(), store.Query{Meta: map[string]string{bus.MetaDestination: dest, bus.MetaAction: action}})
	require.NoError(t, err)
	return recs
}

func TestScenario(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg, err := config.Load([]string{"microservicebus.yaml"}, config.WithRegistry(config.NewRegistry(config.WithLogger(logger))))
		require.NoError(t, err)
		built, err := bus.FromConfig(cfg, bus.ConfigOptions{Options: bus.Options{Logger: logger},
			Env: component.Env{Logger: logger, DataDir: t.TempDir()}, Open: true})
		require.NoError(t, err)
		defer built.Close()
		require.Len(t, built.Stores, 1, "the services share one memory store")
		st := built.Stores[0]
		b := built.Bus
		ctx := context.Background()
		require.NoError(t, b.Start(ctx))
		assert.Equal(t, []string{"com", "logger", "sensor", "emailhandler"}, b.Services())

		// 1. The sensor submits a reading each second (the fake clock
		// starts at 00:00:00): 25, 30, 35 degrees.
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		readings := records(t, st, "com", bus.Process)
		require.Len(t, readings, 3)
		for i, r := range readings {
			assert.Equal(t, store.Done, r.State)
			assert.Equal(t, "sensor", r.Message.Meta[bus.MetaFrom], "submitted by the sensor's flow")
			assert.Equal(t, 25.0+5*float64(i), r.Message.Context["temperature"])
			assert.Equal(t, true, r.Message.Context["forwarded"])
		}
		ticks := records(t, st, "sensor", bus.Process)
		require.Len(t, ticks, 3, "the schedule fed the sensor's Process")

		// 2. The hot reading (35 > 30) made com submit to emailhandler's
		// custom SendEmail action.
		emails := records(t, st, "emailhandler", "SendEmail")
		require.Len(t, emails, 1)
		assert.Equal(t, "com", emails[0].Message.Meta[bus.MetaFrom])
		assert.Equal(t, store.Done, emails[0].State)
		assert.Equal(t, "hot: 35 degrees at 2000-01-01T00:00:03Z", emails[0].Message.Context["subject"])
		assert.Equal(t, true, emails[0].Message.Context["sent"])

		// An email without a recipient is rejected with its reason.
		_, err = b.Request(ctx, "emailhandler", "SendEmail", map[string]any{"subject": "x"})
		se, ok := errors.AsType[*errors.StopError](err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, "no recipient", se.Reason)

		// 3. The state disables the custom services: the sensor stops
		// producing, emailhandler refuses messages, com and logger run.
		_, err = b.Request(ctx, "com", "DesiredState", map[string]any{"enabled": false})
		require.NoError(t, err)
		synctest.Wait() // the state step applies the state after its run
		assert.False(t, b.State().Enabled)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		assert.Len(t, records(t, st, "com", bus.Process), 3, "no readings while disabled")
		err = b.Submit(ctx, "emailhandler", "SendEmail", map[string]any{"to": "a@b.c"})
		require.ErrorIs(t, err, bus.ErrDisabled)
		_, err = b.Request(ctx, "com", bus.Process, map[string]any{"ts": "manual", "temperature": 20})
		require.NoError(t, err, "internal services keep running")
		updates := records(t, st, "logger", bus.StateUpdate)
		require.Len(t, updates, 1)
		assert.Equal(t, false, updates[0].Message.Context["enabled"])
		require.Len(t, records(t, st, "sensor", bus.StateUpdate), 1, "the sensor got the update before it stopped")
		for _, s := range b.Status() {
			wantUp := s.Name == "com" || s.Name == "logger"
			assert.Equal(t, wantUp, s.State == bus.StateRunning, s.Name)
			assert.Equal(t, !wantUp, s.Disabled, s.Name)
		}

		// 4. Enabled again: the sensor produces again.
		_, err = b.Request(ctx, "com", "DesiredState", map[string]any{"enabled": true})
		require.NoError(t, err)
		synctest.Wait()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Len(t, records(t, st, "com", bus.Process), 6, "3 readings, the manual one, 2 more readings")
		assert.Len(t, records(t, st, "com", "DesiredState"), 2)
		assert.Len(t, records(t, st, "logger", bus.StateUpdate), 2)
		assert.Len(t, records(t, st, "sensor", bus.StateUpdate), 2, "re-enabled services get the update too")

		// 5. The logger receives broadcasts of its Log action.
		require.NoError(t, b.Submit(ctx, bus.Broadcast, "Log", map[string]any{"text": "hello all"}))
		require.NoError(t, b.Stop(ctx))
		logs := records(t, st, "logger", "Log")
		require.Len(t, logs, 1)
		assert.Equal(t, "hello all", logs[0].Message.Context["text"])
		assert.Equal(t, store.Done, logs[0].State)
	})
}

// TestBusSend is the command of the YAML's header.
func TestBusSend(t *testing.T) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), []string{"bus", "send", "emailhandler", "SendEmail", "--input", `{"to": "ops@example.com", "subject": "hi"}`, "microservicebus.yaml"},
		cli.WithStdio(nil, &out, &errb))
	require.Equal(t, 0, code, errb.String())
	var reply map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &reply))
	assert.Equal(t, map[string]any{"to": "ops@example.com", "subject": "hi", "sent": true}, reply)

	out.Reset()
	errb.Reset()
	code = cli.Run(context.Background(), []string{"bus", "send", "emailhandler", "SendEmail", "--input", `{"subject": "hi"}`, "microservicebus.yaml"},
		cli.WithStdio(nil, &out, &errb))
	assert.Equal(t, cli.ExitStopped, code)
	assert.Contains(t, errb.String(), "no recipient")

	errb.Reset()
	code = cli.Run(context.Background(), []string{"bus", "send", "nobody", "Process", "microservicebus.yaml"}, cli.WithStdio(nil, &out, &errb))
	assert.Equal(t, cli.ExitFailure, code)
	assert.Contains(t, errb.String(), `"nobody": unknown destination: expected one of com, logger, sensor, emailhandler`)

	errb.Reset()
	code = cli.Run(context.Background(), []string{"bus", "send", "com", "Process", "--submit", "--input", `{"ts": "t", "temperature": 40}`, "microservicebus.yaml"},
		cli.WithStdio(nil, &out, &errb))
	assert.Equal(t, 0, code, errb.String())
	assert.Contains(t, errb.String(), `msg="email sent"`, "what the message set off ran before the command ended")
}
