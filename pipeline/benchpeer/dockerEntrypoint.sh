#!/bin/bash
# The peer's entrypoint, as the seed's was: the DIRAC environment, then
# the command.
set -e
source /opt/dirac/bashrc
exec "$@"
