// Package packaging holds what the novanet Debian package is made of (the
// nfpm description, the systemd units, the example novanet.conf and the
// maintainer scripts) and the tests that build, install and check it.
// scripts/build-deb.sh builds the package.
package packaging
