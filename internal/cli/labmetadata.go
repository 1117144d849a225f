package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"novanet/internal/lab"
)

// addMetadataBootFlags gives `lab boot` what the metadata service hands a
// guest: user data and a public key.
func addMetadataBootFlags(cmd *cobra.Command, userData, keyName, keyFile *string) {
	f := cmd.Flags()
	f.StringVar(userData, "user-data", "", "user data for the VM's metadata (a value, or @file to read a file)")
	f.StringVar(keyName, "key-name", "", "name of the VM's SSH key (default: the key file's name when --key-file is given)")
	f.StringVar(keyFile, "key-file", "", "an SSH public key file (e.g. ~/.ssh/id_ed25519.pub) served as public-keys/0/openssh-key")
}

func labBootSpec(name, host, client, userData, keyName, keyFile string) (lab.VMSpec, error) {
	sp := lab.VMSpec{Name: name, Host: host, Client: client, KeyName: keyName}
	if path, ok := strings.CutPrefix(userData, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return sp, usagef("--user-data @%s: %v", path, err)
		}
		userData = string(b)
	}
	sp.UserData = userData
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return sp, usagef("--key-file: %v", err)
		}
		sp.KeyData = strings.TrimSpace(string(b))
		if !strings.HasPrefix(sp.KeyData, "ssh-") && !strings.HasPrefix(sp.KeyData, "ecdsa-") {
			return sp, usagef("--key-file %s does not look like an OpenSSH public key (ssh-ed25519 AAAA... or ssh-rsa AAAA...)", keyFile)
		}
		if sp.KeyName == "" {
			sp.KeyName = strings.TrimSuffix(strings.TrimSuffix(baseName(keyFile), ".pub"), ".key")
		}
	}
	if sp.KeyName != "" && sp.KeyData == "" {
		return sp, usagef("--key-name %s needs --key-file with the public key", sp.KeyName)
	}
	return sp, nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
