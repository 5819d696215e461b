package worker

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/poold/poold/internal/ipc"
)

// getenv looks names up in env as the process would: the last entry wins.
func getenv(env []string) func(string) string {
	return func(name string) string {
		v := ""
		for _, kv := range env {
			if k, val, ok := strings.Cut(kv, "="); ok && k == name {
				v = val
			}
		}
		return v
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	for _, s := range []Settings{
		{},
		{MaxFrame: 1 << 20, MaxOutput: 100, LogLevel: "debug"},
		{MaxFrame: 7, MaxOutput: 9, LogLevel: "trace", Initializer: "init", InitializerArgs: []byte{0x92, 0x01, 0xa1, '='}, Procs: 1},
		{Initializer: "init"}, // no arguments
		{LogLevel: "warn", Procs: 16},
	} {
		env := s.Environ()
		if want := EnvWorker + "=" + strconv.Itoa(ipc.ProtocolVersion); env[0] != want {
			t.Errorf("%+v: first entry %q, want the marker %q", s, env[0], want)
		}
		for _, kv := range env {
			if !strings.HasPrefix(kv, "POOLD_") || !strings.Contains(kv, "=") {
				t.Errorf("%+v: entry %q", s, kv)
			}
		}
		got, err := readSettings(getenv(env))
		if err != nil {
			t.Errorf("%+v: %v", s, err)
			continue
		}
		if !bytes.Equal(got.InitializerArgs, s.InitializerArgs) {
			t.Errorf("%+v: initializer arguments %x, want %x", s, got.InitializerArgs, s.InitializerArgs)
		}
		got.InitializerArgs, s.InitializerArgs = nil, nil
		if !reflect.DeepEqual(got, s) {
			t.Errorf("round trip of %+v gave %+v (environment %q)", s, got, env)
		}
	}
}

func TestReadSettingsRefuses(t *testing.T) {
	for _, env := range [][]string{
		nil,
		{EnvWorker + "=0"},
		{EnvWorker + "=" + strconv.Itoa(ipc.ProtocolVersion+1)},
	} {
		_, err := readSettings(getenv(env))
		if _, ok := err.(*versionError); !ok {
			t.Errorf("%q: error %v, want a version error", env, err)
		}
	}
	env := append(Settings{Initializer: "init"}.Environ(), EnvInitArgs+"=not base64!")
	if _, err := readSettings(getenv(env)); err == nil {
		t.Errorf("bad initializer arguments: no error")
	} else if _, ok := err.(*versionError); ok {
		t.Errorf("bad initializer arguments: %v is a version error", err)
	}
	// Numbers that are not positive read as their defaults.
	got, err := readSettings(getenv(append(Settings{}.Environ(), EnvMaxFrame+"=-5", EnvMaxOutput+"=x", EnvProcs+"=0")))
	if err != nil || got.MaxFrame != 0 || got.MaxOutput != 0 || got.Procs != 0 {
		t.Errorf("bad numbers: %+v %v", got, err)
	}
}
