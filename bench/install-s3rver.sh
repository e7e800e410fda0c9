#!/bin/sh
# Installs the pinned s3rver peer into bench/node_modules (ignored by git).
set -eu
bench=$(cd "$(dirname "$0")" && pwd)
npm install --prefix "$bench" --no-audit --no-fund s3rver@3.7.1
