# anylat: the agent (`anylat run`) and the reflector (`anylat reflector`) in one image.
#
#   docker build -t anylat .
#   docker run -d --name anylat --network host \
#     -v /etc/anylat:/etc/anylat:ro -v anylat-state:/var/lib/anylat \
#     -e INFLUX_TOKEN=... anylat                      # runs: anylat run --config /etc/anylat/anylat.yaml
#   docker run -d --name reflector --network host anylat reflector --site us-east-1
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
RUN apt-get update \
 && apt-get install -y --no-install-recommends iputils-ping ca-certificates \
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
