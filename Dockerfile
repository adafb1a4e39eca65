# anylat: the agent (`anylat run`) and the reflector (`anylat reflector`) in one image.
#
#   docker build -t anylat .
#   docker run -d --name anylat --network host \
#     -v /etc/anylat:/etc/anylat:ro -v anylat-state:/var/lib/anylat \
#     -e INFLUX_TOKEN=... anylat                      # runs: anylat run --config /etc/anylat/anylat.yaml
#   docker run -d --name reflector --network host anylat reflector --site us-east-1
#     (ports 862 as user node: the image gives node CAP_NET_BIND_SERVICE, see below; with
#     --cap-drop ALL add --cap-add NET_BIND_SERVICE back, or use --udp-port/--tcp-port ≥ 1024)
#
# The agent is TypeScript, compiled to JavaScript in dist/ in the build stage (bin/build.js, which
# `npm ci` runs as `prepare`): it starts faster and needs about 40 MB less memory than through tsx,
# which stays a runtime dependency for the lab's helper processes. The image carries dist/, not
# the sources, so bin/anylat.js runs dist/.

# ---- build: native modules (better-sqlite3, koffi) use prebuilt binaries when one matches, else
# compile here, so the runtime image carries no compiler; then the dev dependencies go.
FROM node:20-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/anylat
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY agent ./agent
RUN npm ci && npm prune --omit=dev && npm cache clean --force

# ---- runtime
FROM node:20-slim
# iputils-ping: the icmp probe runs the system ping (its time= comes from kernel timestamps).
# The image runs as `node`, and the reflector's default ports (862) are below 1024: node gets
# CAP_NET_BIND_SERVICE as a file capability, so `docker run --network host anylat reflector`
# binds them without root (Docker's default capability set includes it; with --network host the
# host's ip_unprivileged_port_start applies, not the container's). It allows binding low ports,
# nothing else. setcap comes from libcap2-bin, removed again.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iputils-ping ca-certificates libcap2-bin \
 && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")" \
 && apt-get purge -y libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/anylat
COPY --from=build /opt/anylat/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY --from=build /opt/anylat/bin ./bin
# the compiled agent, with the files it reads (the web page, the lab topology) and the build's stamp
COPY --from=build /opt/anylat/dist/agent ./dist/agent
COPY anylat.example.yaml /etc/anylat/anylat.example.yaml
RUN ln -s /opt/anylat/bin/anylat.js /usr/local/bin/anylat \
 && mkdir -p /var/lib/anylat \
 && chown node:node /var/lib/anylat
# The store goes to /var/lib/anylat/anylat.db unless the config's store.path says otherwise.
ENV NODE_ENV=production STATE_DIRECTORY=/var/lib/anylat
VOLUME /var/lib/anylat
USER node
# reflector: STAMP 862/udp, TCP echo 862/tcp, HTTP 8080/tcp. The agent listens on nothing unless
# web.listen is set.
EXPOSE 862/udp 862/tcp 8080/tcp
# `docker stop` sends SIGTERM: rounds in flight get 5 s, InfluxDB 3 s, inside Docker's default 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["anylat"]
CMD ["run", "--config", "/etc/anylat/anylat.yaml"]
