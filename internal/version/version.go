// Package version says which novanet this is: the release, the commit and
// the build date stamped in with -ldflags by the package build, else what
// the Go toolchain recorded in the binary (module version, VCS revision
// and time), so a plain `go build` in a checkout still names its commit.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Stamped by the build:
//
//	go build -ldflags "-X novanet/internal/version.version=1.2.0
//	  -X novanet/internal/version.commit=abc123
//	  -X novanet/internal/version.date=2026-12-02T05:00:00Z"
var (
	version string
	commit  string
	date    string
)

// Info is one binary's identity.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
}

var (
	once sync.Once
	info Info
)

// Get returns this binary's Info; fields nothing recorded read "unknown".
func Get() Info {
	once.Do(func() { info = resolve(version, commit, date, debug.ReadBuildInfo) })
	return info
}

// String is the version alone, for User-Agent headers and reports.
func String() string { return Get().Version }

func resolve(v, c, d string, read func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: v, Commit: c, BuildDate: d, GoVersion: runtime.Version()}
	if bi, ok := read(); ok {
		i.GoVersion = bi.GoVersion
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.time":
				if i.BuildDate == "" {
					i.BuildDate = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && c == "" && i.Commit != "" {
			i.Commit += "-dirty"
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.BuildDate == "" {
		i.BuildDate = "unknown"
	}
	return i
}

// Text is the multi-line form `novanet version` prints.
func (i Info) Text() string {
	return fmt.Sprintf("novanet %s\ncommit: %s\nbuilt: %s\ngo: %s\n", i.Version, i.Commit, i.BuildDate, i.GoVersion)
}
