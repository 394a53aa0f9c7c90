# syntax=docker/dockerfile:1
# Latchkey's container image. The build stage installs everything (the build needs the
# development tools: TypeScript, Tailwind, Prisma's generator, esbuild); the runtime stage
# holds only the standalone output of `npm run build` (server.js, the traced node_modules,
# latchkey.mjs) and runs it as an unprivileged user. The app directory is read-only at run
# time, so the image works with a read-only root filesystem.
#
#   docker build -t latchkey .
#   docker run -p 3000:3000 -e DATABASE_URL=... -e OIDC_ISSUER=... latchkey        (everything)
#   docker run latchkey migrate | web | worker | authz                               (one role)

ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
ENV NEXT_TELEMETRY_DISABLED=1
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    HOSTNAME=0.0.0.0 \
    PORT=3000
# The standalone output only: no project sources, no package manager install, no dev packages.
COPY --from=build --chown=root:root /app/.next/standalone ./
USER node
EXPOSE 3000 3002 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/api/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "latchkey.mjs"]
CMD ["all"]
