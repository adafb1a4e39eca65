#!/bin/bash
# Runs once, when the influxdb:2 container initialises its data volume (after `influx setup`).
# Grafana's dashboards and alerts speak InfluxQL, which InfluxDB 2 answers only for buckets with a
# DBRP (database/retention policy) mapping: map database "anylat" to the anylat bucket.
set -euo pipefail
influx v1 dbrp create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${ANYLAT_INFLUX_DATABASE:-anylat}" \
  --rp autogen \
  --default
