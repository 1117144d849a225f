package version

import (
	"runtime/debug"
	"testing"
)

func TestResolvePrefersLdflags(t *testing.T) {
	read := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v0.0.1"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "fromvcs"}, {Key: "vcs.time", Value: "vcstime"}}}, true
	}
	got := resolve("1.2.0", "abc", "2026-12-02", read)
	want := Info{Version: "1.2.0", Commit: "abc", BuildDate: "2026-12-02", GoVersion: "go1.99"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestResolveFallsBackToBuildInfo(t *testing.T) {
	read := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "deadbeef"}, {Key: "vcs.time", Value: "2026-01-01T00:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}, true
	}
	got := resolve("", "", "", read)
	want := Info{Version: "devel", Commit: "deadbeef-dirty", BuildDate: "2026-01-01T00:00:00Z", GoVersion: "go1.99"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	none := resolve("", "", "", func() (*debug.BuildInfo, bool) { return nil, false })
	if none.Version != "devel" || none.Commit != "unknown" || none.BuildDate != "unknown" || none.GoVersion == "" {
		t.Fatalf("without build info: %+v", none)
	}
}
