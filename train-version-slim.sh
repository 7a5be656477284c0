#!/usr/bin/env bash
# Train ULFD version-slim (320x240): train-version-RFB.sh with the slim model id. Every value
# can be overridden the same way (environment variables, extra flags).
MODEL="${MODEL:-ulfd-slim-320}" exec sh "$(dirname "$0")/train-version-RFB.sh" "$@"
