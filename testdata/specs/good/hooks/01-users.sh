#!/bin/sh
# A recipe hook: runs inside the build container.
set -e
adduser -D ci 2>/dev/null || useradd -m ci
