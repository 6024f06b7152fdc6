#!/usr/bin/env bash
# Checks a `make install DESTDIR=<root> PREFIX=/usr` tree:
#  * every file is where systemd, podman's Quadlet search path, man and the shells look;
#  * the generator symlinks point at the installed binary, and their names select the mode;
#  * the man pages render without warnings (man-db's `man -l`, when installed);
#  * shipped service units and the units generated from the shipped Quadlet templates pass
#    `systemd-analyze verify` (templates verified through an instance).
# Prints one line per failed check and exits 1 if any failed.
set -uo pipefail
root=${1:?usage: check-install.sh DESTDIR}
here=$(cd "$(dirname "$0")/.." && pwd)
fail=0
bad() { echo "check-install: $*" >&2; fail=1; }
pc() { pkg-config --variable="$1" systemd 2>/dev/null || echo "$2"; }

# The Makefile passes its directories (they may differ from pkg-config's, e.g. in the RPM).
sysgen=${SYSTEM_GENERATOR_DIR:-$(pc systemdsystemgeneratordir /usr/lib/systemd/system-generators)}
usergen=${USER_GENERATOR_DIR:-$(pc systemdusergeneratordir /usr/lib/systemd/user-generators)}
sysunit=${SYSTEM_UNIT_DIR:-$(pc systemdsystemunitdir /usr/lib/systemd/system)}
userunit=${USER_UNIT_DIR:-$(pc systemduserunitdir /usr/lib/systemd/user)}
bashcomp=${BASH_COMPLETION_DIR:-/usr/share/bash-completion/completions}
zshcomp=${ZSH_COMPLETION_DIR:-/usr/share/zsh/vendor-completions}
fishcomp=${FISH_COMPLETION_DIR:-/usr/share/fish/vendor_completions.d}
gen=${LIBEXECDIR:-/usr/libexec}/unitwright/unitwright-generator
bindir=${BINDIR:-/usr/bin}
mandir=${MANDIR:-/usr/share/man}
docdir=${DOCDIR:-/usr/share/doc/unitwright}
qsys=${QUADLET_SYSTEM_DIR:-/usr/share/containers/systemd}
qusers=${QUADLET_USERS_DIR:-/etc/containers/systemd/users}
tmpldir=${TEMPLATE_DIR:-/usr/share/unitwright/templates}
confdir=${GENERATOR_CONF_DIR:-/usr/lib/unitwright}

for f in "$bindir/unitwright" "$gen"; do
  [ -x "$root$f" ] && [ -f "$root$f" ] || bad "$f: missing or not executable"
done
for l in "$sysgen/unitwright-system-generator" "$usergen/unitwright-user-generator"; do
  [ -L "$root$l" ] || { bad "$l: not a symlink"; continue; }
  [ "$(readlink "$root$l")" = "$gen" ] || bad "$l points to $(readlink "$root$l"), not $gen"
done
[ -f "$root$confdir/generator.conf" ] || bad "$confdir/generator.conf missing"
grep -q '^PodmanVersion=auto$' "$root$confdir/generator.conf" 2>/dev/null ||
  bad "generator.conf does not set PodmanVersion=auto"

for q in "$here"/units/*.container "$here"/units/*.volume "$here"/units/*.network \
         "$here"/units/*.kube "$here"/units/*.pod "$here"/units/*.image "$here"/units/*.build; do
  [ -e "$q" ] || continue
  n=$(basename "$q")
  cmp -s "$q" "$root$qsys/$n" || bad "$qsys/$n missing or different"
  cmp -s "$q" "$root$qusers/$n" || bad "$qusers/$n missing or different"
done
for s in "$here"/units/*.service; do
  [ -e "$s" ] || continue
  n=$(basename "$s")
  [ -f "$root$sysunit/$n" ] || bad "$sysunit/$n missing"
  [ -f "$root$userunit/$n" ] || bad "$userunit/$n missing"
done
if [ -d "$here/templates" ]; then
  (cd "$here/templates" && find . -type f) | while read -r t; do
    cmp -s "$here/templates/$t" "$root$tmpldir/$t" || echo "$t"
  done | grep -q . && bad "templates under $tmpldir missing or different"
fi

pages=(man1/unitwright.1 man5/unitwright.quadlet.5 man8/unitwright-generator.8)
for p in "${pages[@]}"; do
  [ -f "$root$mandir/$p" ] || bad "$mandir/$p missing"
done
subpages=$(find "$root$mandir/man1" -name 'unitwright-*.1' | wc -l)
[ "$subpages" -ge 3 ] || bad "only $subpages subcommand man pages in man1"
# The pages of the everyday verbs have examples.
for n in unitwright unitwright-status unitwright-logs unitwright-start unitwright-instance-start; do
  grep -q '^\.SH EXAMPLES' "$root$mandir/man1/$n.1" 2>/dev/null || bad "$mandir/man1/$n.1 has no EXAMPLES"
done
# Every page a page refers to (.BR name (section)) and every documentation file it names is
# installed; no page names a path of the source tree (docs/...).
for p in "$root$mandir"/man*/*; do
  while read -r name sec; do
    sec=${sec//[()]/}
    [ -f "$root$mandir/man$sec/$name.$sec" ] || bad "${p#"$root"} refers to $name($sec), not installed"
  done < <(grep -o '^\.BR unitwright[^ ]* ([1-8])' "$p" | sed 's/^\.BR //; s/\\-/-/g' | sort -u)
  while read -r f; do
    [ -e "$root$f" ] || bad "${p#"$root"} names $f, not installed"
  done < <(grep -o "$docdir/[A-Za-z0-9._/-]*" "$p" | sed 's/[.]$//' | sort -u)
  ! grep -q 'docs/' "$p" || bad "${p#"$root"} names a source path (docs/...)"
done
if command -v man >/dev/null; then
  for p in "$root$mandir"/man*/*; do
    # The C locale (as in package builds) uses the ASCII device: no typographic characters.
    out=$(LC_ALL=C MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
    [ -z "$out" ] || bad "man -l $p: $out"
    MANWIDTH=80 man -l "$p" 2>/dev/null | grep -q 'NAME' || bad "man -l $p renders no NAME section"
  done
else
  echo "check-install: man is not installed; man pages not rendered" >&2
fi

for c in "$bashcomp/unitwright" "$zshcomp/_unitwright" "$fishcomp/unitwright.fish"; do
  [ -s "$root$c" ] || bad "$c missing or empty"
done
bash -n "$root$bashcomp/unitwright" 2>/dev/null || bad "bash completion has syntax errors"
for e in console@.container.d/10-image.conf console@.service.d/10-resources.conf console@.service.d/20-hardening.conf; do
  [ -f "$root$docdir/examples/dropins/$e" ] || bad "example drop-in $e missing"
done

# Units: shipped services, and what the installed generator makes of the shipped templates.
if command -v systemd-analyze >/dev/null; then
  work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
  for s in "$root$sysunit"/*.service; do
    [ -e "$s" ] || continue
    systemd-analyze verify "$s" >"$work/verify.log" 2>&1 || bad "systemd-analyze verify $s: $(cat "$work/verify.log")"
  done
  mkdir -p "$work/out"
  if env -i PATH="$PATH" QUADLET_UNIT_DIRS="$root$qsys" \
      UNITWRIGHT="$root$bindir/unitwright" UNITWRIGHT_PODMAN_VERSION=auto \
      "$root$gen" -no-kmsg-log "$work/out" 2>"$work/gen.log"; then
    for u in "$work"/out/*.service; do
      [ -e "$u" ] || continue
      n=$(basename "$u")
      if [[ $n == *@.service ]]; then
        # A template is verified through an instance of it.
        inst="${n%@.service}@check.service"
        ln -s "$n" "$work/out/$inst"
        u="$work/out/$inst"
      fi
      (cd "$work/out" && systemd-analyze verify "$u") >"$work/verify.log" 2>&1 ||
        bad "systemd-analyze verify $n: $(cat "$work/verify.log")"
    done
  else
    bad "generator failed on the shipped templates: $(cat "$work/gen.log")"
  fi
else
  echo "check-install: systemd-analyze is not installed; units not verified" >&2
fi

[ "$fail" = 0 ] && echo "check-install: $root OK"
exit "$fail"
