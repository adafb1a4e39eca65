// The page's files, read once at start: a fixed table of URL -> file, so no request path ever
// reaches the file system. uPlot comes from its installed package, wherever npm put it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface StaticFile {
  body: Buffer;
  type: string;
}

const require = createRequire(import.meta.url);
const publicFile = (name: string): string => fileURLToPath(new URL(`./public/${name}`, import.meta.url));

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const SVG = 'image/svg+xml';

/** URL path -> [file on disk, content type]. */
function table(): Record<string, [string, string]> {
  return {
    '/': [publicFile('index.html'), HTML],
    '/index.html': [publicFile('index.html'), HTML],
    '/app.js': [publicFile('app.js'), JS],
    '/charts.js': [publicFile('charts.js'), JS],
    '/format.js': [publicFile('format.js'), JS],
    '/sections.js': [publicFile('sections.js'), JS],
    '/style.css': [publicFile('style.css'), CSS],
    '/favicon.svg': [publicFile('favicon.svg'), SVG],
    '/vendor/uPlot.iife.min.js': [require.resolve('uplot/dist/uPlot.iife.min.js'), JS],
    '/vendor/uPlot.min.css': [require.resolve('uplot/dist/uPlot.min.css'), CSS],
  };
}

/** Reads every file the page needs; throws at start (not at the first request) when one is missing. */
export function loadStatic(): Map<string, StaticFile> {
  const out = new Map<string, StaticFile>();
  for (const [path, [file, type]] of Object.entries(table())) out.set(path, { body: readFileSync(file), type });
  return out;
}
