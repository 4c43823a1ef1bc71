#!/bin/sh
# Installs the named Debian packages that are not installed yet; does nothing (and
# needs no network) when all are present.
#
# A name written PKG/SUITE (e.g. runsc/bookworm-backports) asks for the version in that
# suite: installed from it with `apt-get install -t SUITE`, and reinstalled from it when
# the version present is not that suite's (bookworm's own runsc is too old to be useful).
# A backports suite missing from the apt sources is added first (deb.debian.org).
set -eu
missing=""
suites=""
for arg in "$@"; do
  p="${arg%%/*}"
  suite=""
  [ "$p" != "$arg" ] && suite="${arg#*/}"
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $arg"
  elif [ -n "$suite" ]; then
    # Installed: is it the suite's version? apt-cache policy marks the installed one
    # with ***; the lines after it list the suites that carry it.
    if ! apt-cache policy "$p" 2>/dev/null | awk '/\*\*\*/{f=1;next} f&&/^     [0-9]/{exit} f' | grep -q " $suite/"; then
      missing="$missing $arg"
    fi
  fi
  case " $suites " in *" $suite "*) ;; *) [ -n "$suite" ] && suites="$suites $suite" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages:$missing (run as root to install them)" >&2
  exit 1
fi
for s in $suites; do
  if ! grep -rqs -- "$s" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "adding the apt source $s (deb.debian.org)"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$s" \
      > "/etc/apt/sources.list.d/$s.sources"
  fi
done
echo "installing Debian packages:$missing"
apt-get update -qq
plain=""
for arg in $missing; do
  p="${arg%%/*}"
  if [ "$p" = "$arg" ]; then plain="$plain $p"; else
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t "${arg#*/}" "$p"
  fi
done
[ -z "$plain" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $plain
