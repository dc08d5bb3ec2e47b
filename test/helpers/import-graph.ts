import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * The import graph of src/ and the rules it must keep (docs/architecture.md, "Layers"). Paths are
 * relative to src/, with forward slashes. Every import counts, `import type` too: a type-only
 * cycle still means two modules that can't be understood (or moved) one without the other.
 */

/** File → the files of src/ it imports. */
export type ImportGraph = Map<string, Set<string>>;

export interface Layer {
  name: string;
  /** Folders of src/, or '.' for the files at its root. */
  modules: string[];
  /** Whether the modules of this layer may import one another (otherwise they are independent). */
  shareable?: boolean;
}

export interface LayerRules {
  /** Lowest first: a module imports only the layers below its own. */
  layers: Layer[];
  /** The layer route and page files belong to, whatever domain folder they are in. */
  routeLayer: string;
  /** Route and page files inside domain folders. */
  routeFile: RegExp;
  /** Table types: importable by `tableGatherer` (which gathers them into one database type). */
  tableFile: RegExp;
  tableGatherer: string;
}

/** Every .ts file under `dir`, by its path relative to `dir`. */
export function readSources(dir: string): Map<string, string> {
  const sources = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const full = path.join(entry.parentPath, entry.name);
    sources.set(path.relative(dir, full).split(path.sep).join('/'), readFileSync(full, 'utf8'));
  }
  return sources;
}

/** The module specifiers of `source`: import and export declarations, `import()` calls and `import('…')` types. */
export function specifiersOf(file: string, source: string): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      found.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true));
  return found;
}

/**
 * The graph of relative imports between `sources`; packages and files outside them are left out.
 * `unresolved` lists relative imports of a .ts file that is not there (a rule can't be checked on
 * an edge it can't see).
 */
export function importGraph(sources: Map<string, string>): { graph: ImportGraph; unresolved: string[] } {
  const graph: ImportGraph = new Map();
  const unresolved: string[] = [];
  for (const [file, source] of sources) {
    const targets = new Set<string>();
    for (const spec of specifiersOf(file, source)) {
      if (!spec.startsWith('.')) continue;
      const target = path.posix.join(path.posix.dirname(file), spec);
      if (sources.has(target)) targets.add(target);
      else if (target.endsWith('.ts') && !target.startsWith('../')) unresolved.push(`${file} imports ${spec}, which is not a file`);
    }
    graph.set(file, targets);
  }
  return { graph, unresolved };
}

/** One cycle per group of files that import one another, each as a path that ends where it starts. */
export function findCycles(graph: ImportGraph): string[][] {
  // Tarjan's strongly connected components, iteratively (no recursion depth to worry about).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; targets: string[]; i: number }> = [];
    const enter = (node: string) => {
      index.set(node, next);
      low.set(node, next++);
      stack.push(node);
      onStack.add(node);
      work.push({ node, targets: [...(graph.get(node) ?? [])], i: 0 });
    };
    enter(start);
    while (work.length) {
      const frame = work[work.length - 1]!;
      if (frame.i < frame.targets.length) {
        const target = frame.targets[frame.i++]!;
        if (!index.has(target)) enter(target);
        else if (onStack.has(target)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(target)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1 || graph.get(frame.node)?.has(frame.node)) components.push(component);
      }
    }
  }
  return components.map((component) => cycleThrough(graph, new Set(component), component.sort()[0]!));
}

/** The shortest path from `start` back to itself inside `component` (breadth first). */
function cycleThrough(graph: ImportGraph, component: Set<string>, start: string): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let at = queue.shift(); at !== undefined; at = queue.shift()) {
    for (const target of [...(graph.get(at) ?? [])].sort()) {
      if (!component.has(target)) continue;
      if (target === start) {
        const cycle = [start];
        for (let step: string | undefined = at; step !== start && step !== undefined; step = cameFrom.get(step)) cycle.splice(1, 0, step);
        return [...cycle, start];
      }
      if (!cameFrom.has(target)) {
        cameFrom.set(target, at);
        queue.push(target);
      }
    }
  }
  return [start, start];
}

/** The folder of src/ a file is in, or '.' for the files at its root. */
export const moduleOf = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '.');

/** Files whose module no layer declares. */
export function unplaced(files: Iterable<string>, rules: LayerRules): string[] {
  const declared = new Set(rules.layers.flatMap((l) => l.modules));
  return [...files].filter((f) => !declared.has(moduleOf(f)));
}

/** Every import that goes against the declared direction, as a sentence naming both files. */
export function layerViolations(graph: ImportGraph, rules: LayerRules): string[] {
  const rankOf = new Map<string, number>();
  for (const [rank, layer] of rules.layers.entries()) for (const m of layer.modules) rankOf.set(m, rank);
  const routeRank = rules.layers.findIndex((l) => l.name === rules.routeLayer);
  if (routeRank < 0) throw new Error(`no layer is named ${rules.routeLayer}`);
  const isRoute = (file: string) => rankOf.get(moduleOf(file)) === routeRank || rules.routeFile.test(file);
  const rank = (file: string) => (isRoute(file) && rankOf.get(moduleOf(file))! < routeRank ? routeRank : rankOf.get(moduleOf(file)));
  const name = (r: number) => rules.layers[r]!.name;

  const problems: string[] = [];
  for (const [from, targets] of graph) {
    const fromRank = rank(from);
    if (fromRank === undefined) continue; // reported by unplaced()
    for (const to of targets) {
      const toRank = rank(to);
      if (toRank === undefined) continue;
      const edge = `${from} imports ${to}`;
      if (rules.tableFile.test(from) && moduleOf(to) !== moduleOf(from) && toRank !== 0) {
        problems.push(`${edge}: a table's types import only the base and their own folder, so that ${rules.tableGatherer}/ can gather them`);
      } else if (moduleOf(from) === moduleOf(to)) {
        if (isRoute(to) && !isRoute(from)) problems.push(`${edge}: ${to} is a route or page file; nothing below the routes imports it`);
      } else if (rules.tableFile.test(to) && moduleOf(from) === rules.tableGatherer) {
        // db/database.ts gathers every table's types: allowed from below.
      } else if (toRank > fromRank) {
        problems.push(`${edge}: the ${name(fromRank)} layer sits below the ${name(toRank)} layer and may not import it`);
      } else if (toRank === fromRank && !rules.layers[fromRank]!.shareable) {
        problems.push(`${edge}: ${moduleOf(from)} and ${moduleOf(to)} share the ${name(fromRank)} layer and may not import each other`);
      }
    }
  }
  return problems;
}
