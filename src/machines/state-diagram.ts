/**
 * The run machine as a Mermaid `stateDiagram-v2`, generated from the machine itself (its state
 * nodes, initial states, `on` / invoke `onDone` / `onError` / `always` transitions and their
 * guards), so the diagram in the README can be checked for staleness.
 *
 * - Compound states become composite states with their own `[*]` start.
 * - A transition is drawn inside the innermost composite holding both of its ends; an end
 *   inside another composite is drawn at that composite (Mermaid cannot link states of
 *   different composites), and the label says which state it enters when that is not the
 *   composite's initial one (`to detached`).
 * - Labels are the event (`xstate.done.actor.poll` reads `poll done`, a delayed transition
 *   `after untilWake`) and the guard in brackets;
 *   transitions between the same two states share one arrow, their labels joined by ` / `.
 * - Targetless transitions (actions only, the state does not change) are left out.
 * - Transitions of the machine's root (the overall deadline) start from `any state`.
 * - Self-transitions are `%%` comments (Mermaid draws them badly), listed under the diagram.
 */
import type { AnyStateMachine, AnyStateNode } from "xstate";
import { runMachine } from "./run-machine.js";

interface Edge {
  source: AnyStateNode;
  target: AnyStateNode;
  label: string;
}

/** `a.b.c` state node id → Mermaid-safe id (`b_c`, without the machine id). */
function idOf(node: AnyStateNode): string {
  return node.path.length === 0 ? "any_state" : node.path.join("_");
}

function eventLabel(eventType: string): string {
  const done = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (done) return `${done[1]} done`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (error) return `${error[1]} error`;
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (after) return `after ${after[1]}`;
  return eventType === "" ? "always" : eventType;
}

/** A guard's name: `isTerminal`, `hasResponse & isStreamMode`, `!x`, or `inline` for a function. */
function guardLabel(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  if (typeof guard === "string") return guard;
  if (typeof guard === "object" && "type" in guard) return String(guard.type);
  if (typeof guard === "function") {
    const parts = (guard as { guards?: unknown[] }).guards;
    if (Array.isArray(parts)) {
      const names = parts.map((part) => guardLabel(part) ?? "?");
      if (guard.name === "and") return names.join(" & ");
      if (guard.name === "or") return names.join(" | ");
      if (guard.name === "not") return `!${names.join("")}`;
    }
    return "inline";
  }
  return "?";
}

function descendants(node: AnyStateNode): AnyStateNode[] {
  const children = Object.values(node.states) as AnyStateNode[];
  return [node, ...children.flatMap(descendants)];
}

function isAncestor(ancestor: AnyStateNode, node: AnyStateNode): boolean {
  return (
    node.path.length > ancestor.path.length && ancestor.path.every((p, i) => node.path[i] === p)
  );
}

/** The child of `ancestor` on the way to `node` (or `node` itself). */
function childOn(ancestor: AnyStateNode, node: AnyStateNode): AnyStateNode {
  let current = node;
  while (current.parent && current.parent !== ancestor) current = current.parent;
  return current;
}

function edgesOf(machine: AnyStateMachine): Edge[] {
  const edges: Edge[] = [];
  for (const node of descendants(machine.root)) {
    const transitions = [...[...node.transitions.values()].flat(), ...(node.always ?? [])];
    for (const transition of transitions) {
      if (!transition.target) continue; // actions only: no change of state
      const guard = guardLabel(transition.guard);
      const label = `${eventLabel(transition.eventType)}${guard ? ` [${guard}]` : ""}`;
      for (const target of transition.target as AnyStateNode[]) {
        edges.push({ source: node, target, label });
      }
    }
  }
  return edges;
}

/** Where an edge is drawn, and between which states there. */
function placeEdge(edge: Edge, root: AnyStateNode) {
  if (edge.source === root) {
    // The root's own transitions: from "any state" to the top-level state they enter.
    const target = childOn(root, edge.target);
    return { scope: root, from: "any_state", to: target, entered: edge.target };
  }
  // The innermost compound state that strictly contains both ends.
  let scope: AnyStateNode = edge.source.parent ?? root;
  while (scope !== root && !(isAncestor(scope, edge.target) && isAncestor(scope, edge.source))) {
    scope = scope.parent ?? root;
  }
  const from = childOn(scope, edge.source);
  const to = childOn(scope, edge.target);
  return { scope, from: idOf(from), to, entered: edge.target };
}

/** What an arrow into a composite enters, when that is not the composite's initial state. */
function enteredNote(to: AnyStateNode, entered: AnyStateNode): string {
  if (to === entered) return "";
  const initial = to.initial?.target?.[0] as AnyStateNode | undefined;
  if (initial === entered) return "";
  return ` to ${entered.path.slice(to.path.length).join(".")}`;
}

interface Arrow {
  from: string;
  to: string;
  labels: string[];
}

/** The arrows of a machine, grouped by the composite they are drawn in. */
function arrowsOf(machine: AnyStateMachine) {
  const root = machine.root;
  const byScope = new Map<AnyStateNode, Map<string, Arrow>>();
  const selfLoops = new Map<string, Arrow>();
  for (const edge of edgesOf(machine)) {
    const placed = placeEdge(edge, root);
    const to = idOf(placed.to);
    const label = `${edge.label}${enteredNote(placed.to, placed.entered)}`;
    const key = `${placed.from}\u0000${to}`;
    let arrows = placed.from === to ? selfLoops : byScope.get(placed.scope);
    if (!arrows) {
      arrows = new Map();
      byScope.set(placed.scope, arrows);
    }
    const arrow = arrows.get(key) ?? { from: placed.from, to, labels: [] };
    if (!arrow.labels.includes(label)) arrow.labels.push(label);
    arrows.set(key, arrow);
  }
  return { byScope, selfLoops: [...selfLoops.values()] };
}

/**
 * The Mermaid `stateDiagram-v2` of a machine. Self-transitions (re-entering a state) are
 * written as `%%` comments: Mermaid renders them badly or not at all, on composites above all.
 */
export function machineMermaid(machine: AnyStateMachine): string {
  const root = machine.root;
  const { byScope, selfLoops } = arrowsOf(machine);
  const lines: string[] = ["stateDiagram-v2"];
  const emit = (node: AnyStateNode, indent: string) => {
    const children = Object.values(node.states) as AnyStateNode[];
    for (const child of children) {
      if (child.path.length > 1) lines.push(`${indent}state "${child.key}" as ${idOf(child)}`);
      if (Object.keys(child.states).length > 0) {
        lines.push(`${indent}state ${idOf(child)} {`);
        emit(child, `${indent}  `);
        lines.push(`${indent}}`);
      }
    }
    const initial = node.initial?.target?.[0] as AnyStateNode | undefined;
    if (initial) lines.push(`${indent}[*] --> ${idOf(initial)}`);
    for (const arrow of byScope.get(node)?.values() ?? []) {
      lines.push(`${indent}${arrow.from} --> ${arrow.to}: ${arrow.labels.join(" / ")}`);
    }
    for (const child of children) {
      if (child.type === "final") lines.push(`${indent}${idOf(child)} --> [*]`);
    }
  };
  if ([...(byScope.get(root)?.values() ?? [])].some((arrow) => arrow.from === "any_state")) {
    lines.push(`  state "any state" as any_state`);
  }
  emit(root, "  ");
  for (const loop of selfLoops) {
    lines.push(`  %% self-transition: ${loop.from} --> ${loop.to}: ${loop.labels.join(" / ")}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The run machine's Mermaid `stateDiagram-v2`. */
export function runMachineMermaid(): string {
  return machineMermaid(runMachine);
}

/**
 * What `npm run diagram` writes between the README's markers: the diagram in a `mermaid` code
 * block, then the self-transitions it does not draw.
 */
export function runMachineDiagramSection(): string {
  const { selfLoops } = arrowsOf(runMachine);
  const notDrawn = selfLoops
    .map((loop) => `\`${loop.from}\` (${loop.labels.map((l) => `\`${l}\``).join(", ")})`)
    .join("; ");
  return [
    "```mermaid",
    runMachineMermaid().trimEnd(),
    "```",
    "",
    "Generated from `runMachine` by `npm run diagram`. Nested states are drawn inside their parent;",
    "an arrow into a composite enters its initial state unless its label says `to <state>`.",
    ...(notDrawn ? [`Self-transitions (not drawn): ${notDrawn}.`] : []),
    "",
  ].join("\n");
}

export const DIAGRAM_START = "<!-- state-diagram:start -->";
export const DIAGRAM_END = "<!-- state-diagram:end -->";

/** What a README holds between the diagram markers (null when it has no markers). */
export function readDiagramRegion(readme: string): string | null {
  const start = readme.indexOf(DIAGRAM_START);
  const end = readme.indexOf(DIAGRAM_END, start + DIAGRAM_START.length);
  if (start === -1 || end === -1) return null;
  return readme.slice(start + DIAGRAM_START.length, end).replace(/^\r?\n/, "");
}

/** The README with `section` between its markers (null when it has no markers). */
export function writeDiagramRegion(readme: string, section: string): string | null {
  const start = readme.indexOf(DIAGRAM_START);
  const end = readme.indexOf(DIAGRAM_END, start + DIAGRAM_START.length);
  if (start === -1 || end === -1) return null;
  return `${readme.slice(0, start + DIAGRAM_START.length)}\n${section}${readme.slice(end)}`;
}
