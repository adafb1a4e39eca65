// `npm run bench:house`: the shape of the code, for issue 12's before/after note. Prints the ten
// largest source files (lines), every function longer than 80 lines, the import cycles between
// files and between parts (folders), and the README length.
//   --json   the same as one JSON object
import {
  folderCycles,
  importCycles,
  importGraph,
  lineCount,
  LONG_FUNCTION,
  longFunctions,
  SOURCE_TREES,
  sourceFiles,
} from './lib/code-shape.ts';

const files = sourceFiles();
const largest = files
  .map((f) => ({ file: f, lines: lineCount(f) }))
  .sort((a, b) => b.lines - a.lines)
  .slice(0, 10);
const long = longFunctions(files);
const graph = importGraph(files);
const cycles = importCycles(graph);
const fcycles = folderCycles(graph);
const readme = lineCount('README.md');
if (process.argv.includes('--json')) {
  console.log(
    JSON.stringify(
      { largest, longFunctions: long, fileCycles: cycles, folderCycles: fcycles, readmeLines: readme },
      null,
      2,
    ),
  );
} else {
  console.log(
    `source files: ${files.length} (${SOURCE_TREES.join(', ')}), ${files.reduce((n, f) => n + lineCount(f), 0)} lines`,
  );
  console.log('\nten largest files (lines):');
  for (const l of largest) console.log(`  ${String(l.lines).padStart(5)}  ${l.file}`);
  console.log(`\nfunctions over ${LONG_FUNCTION} lines: ${long.length}`);
  for (const f of long) console.log(`  ${String(f.lines).padStart(5)}  ${f.file}:${f.line} ${f.name}`);
  console.log(`\nimport cycles between files: ${cycles.length}`);
  for (const c of cycles) console.log(`  ${c.join(' <-> ')}`);
  console.log(`\nimport cycles between parts (folders; files at a tree's top stand alone): ${fcycles.length}`);
  for (const c of fcycles) console.log(`  ${c.join(' <-> ')}`);
  console.log(`\nREADME.md: ${readme} lines`);
}
