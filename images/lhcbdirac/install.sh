#!/bin/bash
# Installs an lhcbdirac lock into /opt/dirac. recipe.go runs it in the
# builder container (compilers, Debian's -dev packages); only /opt/dirac
# leaves it. Inputs, all written by recipe.go:
#   /in/tools.lock    uv, pinned by hash
#   /in/build.txt     the lock's build section (pip, setuptools, wheel, setuptools_scm)
#   /in/runtime.txt   the runtime section, without the source-built and hotfixed distributions
#                     and without LHCbDIRAC, which /in/last.txt holds (installed last)
#   /in/sources.txt   the source-built distributions (no wheel for this platform)
#   /in/extra.txt     the build tools the image keeps (a hotfix at container start needs them)
#   /in/src/<Name>    hotfix checkouts; SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NAME> gives their version
#   /in/patches/<name>-<version>.patch  the project's patches (patches/): each is applied
#                     to the unpacked /src/<name>-<version> before it is built
#   $DIRACOS_INSTALLER  when set, DIRACOS2's installer: Python and the compiled
#                       distributions come from it, the rest from the lock
# The index, when not the default, arrives as the secret variables
# PIP_INDEX_URL and UV_DEFAULT_INDEX. Every download is checked against the
# lock's hashes; what is built here is hashed before it is installed.
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt UV_SYSTEM_CERTS=1
# No debug information: it would carry the build's paths into the binaries.
export CFLAGS="-O2 -g0" CXXFLAGS="-O2 -g0"

# Each phase's seconds go to /in/times (the benchmark reads them).
last=$(date +%s.%N)
phase() {
  now=$(date +%s.%N)
  awk -v p="$1" -v a="$last" -v b="$now" 'BEGIN { printf "%s %.3f\n", p, b - a }' >>/in/times
  last=$now
}

python3 -m venv /opt/build # Debian's pip, which trusts the system's certificates
/opt/build/bin/pip install -q --require-hashes --no-deps -r /in/tools.lock -r /in/build.txt
uv=/opt/build/bin/uv
phase tools

mkdir -p /sdist /src /wheels
if [ -z "${DIRACOS_INSTALLER:-}" ] && [ -s /in/sources.txt ]; then
  # Downloaded and checked by pip, unpacked at fixed paths, built by the
  # locked build tools without an isolated environment: a build that needs
  # a tool the lock lacks fails here instead of fetching it unpinned.
  /opt/build/bin/pip download -q --no-deps --require-hashes --no-binary :all: --no-build-isolation -r /in/sources.txt -d /sdist
  for a in /sdist/*; do
    case "$a" in
      *.tar.gz | *.tgz) tar -xzf "$a" -C /src ;;
      *.zip) python3 -m zipfile -e "$a" /src ;;
      *) echo "unknown source archive $a" >&2; exit 1 ;;
    esac
  done
  # The project's patches (patches/*.patch, each with a header saying why),
  # onto the sources of the locked version they were written for; one that
  # does not apply whole stops the build. (patch comes with build-essential.)
  for p in /in/patches/*.patch; do
    [ -e "$p" ] || continue
    d=/src/$(basename "$p" .patch)
    if [ ! -d "$d" ]; then
      echo "patch $(basename "$p"): no $d in this lock's sources, not applied"
      continue
    fi
    echo "patching $(basename "$d") with $(basename "$p")"
    if ! patch -d "$d" -p1 --forward --batch --no-backup-if-mismatch -i "$p"; then
      echo "$(basename "$p") does not apply to $d" >&2
      exit 1
    fi
  done
fi
phase download-sources

# The environment first, then two things at once: uv installs the index's
# distributions (mostly waiting on the network) while the source-only ones
# compile (a compiler on a core). Nothing of one is read by the other: the
# compile uses /opt/build's tools, uv writes /opt/dirac.
if [ -n "${DIRACOS_INSTALLER:-}" ]; then
  (cd /opt/dirac && bash "$DIRACOS_INSTALLER")
  target=/opt/dirac/diracos/bin/python
else
  "$uv" venv -q --python /usr/bin/python3.11 /opt/dirac
  target=/opt/dirac/bin/python
fi
"$uv" pip install -q --python "$target" --require-hashes --no-deps --no-build \
  -r /in/runtime.txt -r /in/extra.txt >/tmp/install-index.log 2>&1 &
index_install=$!

for d in /src/* /in/src/*; do
  [ -d "$d" ] || continue
  echo "building $(basename "$d")"
  (cd "$d" && /opt/build/bin/pip wheel -q --no-deps --no-build-isolation . -w /wheels)
done
phase compile
if ! wait "$index_install"; then
  cat /tmp/install-index.log >&2
  echo "installing the lock's distributions from the index failed" >&2
  exit 1
fi
cat /tmp/install-index.log
phase install-index

# What was built here, hashed before it is installed; LHCbDIRAC last
# (/in/last.txt, or its hotfix wheel): its console scripts replace DIRAC's
# of the same names, as pip's dependency-first order has them, instead of
# whichever uv's parallel install wrote last.
: >/tmp/built.txt
cp /in/last.txt /tmp/last.txt
for w in /wheels/*.whl; do
  [ -e "$w" ] || continue
  line="$w --hash=sha256:$(sha256sum "$w" | cut -d' ' -f1)"
  case "$(basename "$w" | tr '[:upper:]' '[:lower:]')" in
    lhcbdirac-*) echo "$line" >>/tmp/last.txt ;;
    *) echo "$line" >>/tmp/built.txt ;;
  esac
done
if [ -s /tmp/built.txt ]; then
  "$uv" pip install -q --python "$target" --require-hashes --no-deps --no-build -r /tmp/built.txt
fi
if [ -s /tmp/last.txt ]; then
  "$uv" pip install -q --python "$target" --require-hashes --no-deps --no-build -r /tmp/last.txt
fi
phase install

# uv notes when it installed a local wheel (uv_cache.json, listed in
# RECORD): a build time, which would make every image differ.
site=$("$target" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for f in "$site"/*.dist-info/uv_cache.json; do
  [ -e "$f" ] || continue
  rm "$f"
  sed -i '/uv_cache\.json,/d' "$(dirname "$f")/RECORD"
done

if [ -z "${DIRACOS_INSTALLER:-}" ]; then
  # gfal2-python from Debian's python3-gfal2 (see constraints.txt), made
  # visible to the environment and known to pip.
  ln -s /usr/lib/python3/dist-packages/gfal2.cpython-311-x86_64-linux-gnu.so "$site/"
  v=$(dpkg-query -W -f='${Version}' python3-gfal2 | sed 's/-[^-]*$//')
  info="$site/gfal2_python-$v.dist-info"
  mkdir "$info"
  printf 'Metadata-Version: 2.1\nName: gfal2-python\nVersion: %s\nSummary: provided by Debian (python3-gfal2), not installed from the lock\n' "$v" >"$info/METADATA"
  echo debian >"$info/INSTALLER"
  printf '%s\n' "gfal2_python-$v.dist-info/METADATA,," "gfal2_python-$v.dist-info/INSTALLER,," "gfal2_python-$v.dist-info/RECORD,," >"$info/RECORD"
fi

# Every requirement of every installed distribution is met, and the
# services' own modules import.
"$target" -m pip check
"$target" -c 'import DIRAC, LHCbDIRAC, M2Crypto, MySQLdb, gfal2; print("LHCbDIRAC", LHCbDIRAC.__version__, "DIRAC", DIRAC.__version__)'
phase check

# No bytecode in the tree: the installer may leave some, and it would make
# every build differ (the image's times are zeroed when it is pushed).
find /opt/dirac -depth -name __pycache__ -type d -exec rm -rf {} +
