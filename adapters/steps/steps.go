package steps

import (
	"strings"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
)

// The built-in step components.
var (
	// Set assigns keys from expressions.
	Set = component.Step("set", "assign keys from expr expressions, in order (each sees the ones before); writes the assigned keys", newSet)
	// Stop ends the run on purpose.
	Stop = component.Step("stop", "end the run on purpose (a Stop error) when a condition holds; without if:, always", newStop)
	// Drop ends the run on purpose and consumes the message silently.
	Drop = component.Step("drop", "consume the message silently (a Drop: acked, stored done with outcome dropped; in an each, only that element is left out) when a condition holds; without if:, always", newDrop)
	// Log logs a message.
	Log = component.Step("log", "log a message (a text/template over the context) with optional keys as attributes", newLog)
	// Template renders templates into keys.
	Template = component.Step("template", "render text/templates over the context into keys (strings)", newTemplate)
	// HTTP calls an HTTP endpoint.
	HTTP = component.Step("http", "call an HTTP endpoint; 5xx, 408, 425, 429 and timeouts are retried (Retry-After honoured), other 4xx stop the run; the decoded response goes under into", newHTTP)
	// Sleep waits.
	Sleep = component.Step("sleep", "wait for a duration (ends early when the run is canceled); on a durable channel, a sleep over 1s parks the message (state waiting) and a timer wakes it", newSleep)
	// Wait waits for a signal; it needs a durable channel.
	Wait = component.Step("wait", "wait for a named signal (Channel.Signal, the admin API, flowrun messages ... signal); the message waits in state waiting with no goroutine held; needs a channel with durable: steps", newWait)
	// Shell runs a command; it is restricted: off unless enabled.
	Shell = component.Step("shell", "run a command (argv templates, or a script for sh -c); stdout into a key", newShell).Restrict("running commands")
)

// All returns the built-in step components, for a registry of one's own
// (component.NewRegistry(steps.All()...)).
func All() []component.Component {
	return append([]component.Component{Set, Stop, Drop, Log, Template, HTTP, Sleep, Wait, Shell}, Toolkit()...)
}

func init() { component.Register(All()...) }

// needsOf lists keys as untyped required needs, in order, once each.
func needsOf(keys []string) []fc.KeyInfo {
	var out []fc.KeyInfo
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, fc.Any(k))
	}
	return out
}

// pairsNeeds are the needs of a step that fills keys in order (set,
// template): the keys each value reads, but those an earlier pair of the
// step wrote.
func pairsNeeds[T interface{ Keys() []string }](ps component.Pairs[T]) []fc.KeyInfo {
	var reads []string
	written := map[string]bool{}
	for _, p := range ps {
		for _, id := range p.Value.Keys() {
			if !written[id] {
				reads = append(reads, id)
			}
		}
		written[p.Key] = true
	}
	return needsOf(reads)
}

// shortName is a readable step name part: the text, cut to a length.
func shortName(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 32 {
		return string(r[:31]) + "…"
	}
	return s
}

// keysName is "a,b" for a few keys, "a,b,c,…" for more.
func keysName(keys []string) string {
	if len(keys) > 3 {
		return strings.Join(keys[:3], ",") + ",…"
	}
	return strings.Join(keys, ",")
}

// Pure implements flow.Pure: a set step writes only the run's context.
func (s *setService) Pure() bool { return true }

// Pure implements flow.Pure: a stop or drop step writes nothing.
func (s *endService) Pure() bool { return true }

// Pure implements flow.Pure: a template step writes only the run's
// context.
func (s *templateService) Pure() bool { return true }

// Pure implements flow.Pure: a log step writes a log line, which a crash
// may make it write again, and nothing else.
func (s *logService) Pure() bool { return true }

// Pure implements flow.Pure: a short sleep only waits. (A parking sleep
// parks instead: its unit is written when it is woken.)
func (s *sleepService) Pure() bool { return true }
