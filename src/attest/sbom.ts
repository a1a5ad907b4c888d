/**
 * SBOM attestations reduced to a package list: SPDX 2.x JSON (`https://spdx.dev/Document`, what
 * BuildKit's syft scanner writes) and CycloneDX JSON (`https://cyclonedx.org/bom`), formats.md §12.4.
 *
 * Counted as packages: SPDX `packages[]` except syft's synthetic source package
 * (`SPDXID` starting `SPDXRef-DocumentRoot-`); CycloneDX `components[]`, nested ones included,
 * except `type: "file"`. Shape errors are BERTH_INVALID_JSON naming the field; SPDX 3 and other
 * predicate types are BERTH_UNSUPPORTED.
 */
import { BerthError, fieldPath } from '../core/errors.js';
import {
  compareText,
  invalid,
  isObject,
  optArray,
  optObject,
  optString,
  typeName,
  type JsonObject,
  type ShapeContext,
} from './json.js';
import type { Statement } from './statement.js';

export const PREDICATE_SPDX = 'https://spdx.dev/Document';
export const PREDICATE_CYCLONEDX = 'https://cyclonedx.org/bom';
/** How many entries `largestPackages` keeps. */
export const LARGEST_PACKAGES = 10;

export interface SbomPackage {
  readonly name: string;
  readonly version?: string;
  readonly purl?: string;
  /** SPDX licenseDeclared (else licenseConcluded; NOASSERTION/NONE dropped); CycloneDX ids/names/expression joined by ", ". */
  readonly license?: string;
  /** Installed size in bytes, when the SBOM records one (syft CycloneDX `…:installedSize` property). */
  readonly size?: number;
}

export interface SbomSummary {
  readonly format: 'spdx' | 'cyclonedx';
  /** `2.3` for `SPDX-2.3`; CycloneDX `specVersion` as written (`1.5`). */
  readonly specVersion: string;
  /** SPDX `Tool: …` creators without the prefix; CycloneDX tools as `name-version`. */
  readonly tools: readonly string[];
  readonly packageCount: number;
  /** All packages, sorted by name, then version. */
  readonly packages: readonly SbomPackage[];
  /** Up to LARGEST_PACKAGES packages with a size, largest first; absent when no package has one. */
  readonly largestPackages?: readonly SbomPackage[];
}

/** True for the SBOM predicate types this module reads (with or without a `/vX.Y` suffix). */
export function sbomFormatOf(predicateType: string): 'spdx' | 'cyclonedx' | undefined {
  if (predicateType === PREDICATE_SPDX || predicateType.startsWith(`${PREDICATE_SPDX}/`)) return 'spdx';
  if (predicateType === PREDICATE_CYCLONEDX || predicateType.startsWith(`${PREDICATE_CYCLONEDX}/`)) return 'cyclonedx';
  return undefined;
}

export function summarizeSbom(statement: Statement): SbomSummary {
  const format = sbomFormatOf(statement.predicateType);
  if (format === undefined) {
    throw new BerthError(
      'BERTH_UNSUPPORTED',
      `summarize sbom ${statement.what}: predicate type ${JSON.stringify(statement.predicateType)} is not an sbom (want ${PREDICATE_SPDX} or ${PREDICATE_CYCLONEDX})`,
      { subject: statement.what, got: statement.predicateType },
    );
  }
  const ctx: ShapeContext = { what: statement.what, code: 'BERTH_INVALID_JSON' };
  const at = statement.bare ? [] : ['predicate'];
  const doc = statement.predicate;
  if (!isObject(doc)) throw invalid(ctx, 'predicate', `must be an object, got ${typeName(doc)}`);
  const { specVersion, tools, packages } = format === 'spdx' ? readSpdx(doc, ctx, at) : readCycloneDx(doc, ctx, at);

  packages.sort((a, b) => compareText(a.name, b.name) || compareText(a.version ?? '', b.version ?? ''));
  const sized = packages.filter((p) => p.size !== undefined);
  sized.sort((a, b) => (b.size ?? 0) - (a.size ?? 0) || compareText(a.name, b.name));
  return {
    format,
    specVersion,
    tools,
    packageCount: packages.length,
    packages,
    ...(sized.length === 0 ? {} : { largestPackages: sized.slice(0, LARGEST_PACKAGES) }),
  };
}

interface Parts {
  specVersion: string;
  tools: string[];
  packages: SbomPackage[];
}

function readSpdx(doc: JsonObject, ctx: ShapeContext, at: string[]): Parts {
  const spdxVersion = optString(doc, 'spdxVersion', ctx, at);
  if (spdxVersion === undefined) {
    if ('@context' in doc || '@graph' in doc) {
      throw invalid(ctx, fieldPath(...at, '@context'), 'spdx 3 json-ld documents are not supported (want spdx 2.x json)', 'BERTH_UNSUPPORTED');
    }
    throw invalid(ctx, fieldPath(...at, 'spdxVersion'), 'missing');
  }
  const match = /^SPDX-(\d+\.\d+)$/.exec(spdxVersion);
  if (match === null) throw invalid(ctx, fieldPath(...at, 'spdxVersion'), `${JSON.stringify(spdxVersion)} is not of the form SPDX-2.N`);
  const specVersion = match[1] ?? '';
  if (!specVersion.startsWith('2.')) {
    throw invalid(ctx, fieldPath(...at, 'spdxVersion'), `spdx ${specVersion} is not supported (want 2.x)`, 'BERTH_UNSUPPORTED');
  }

  const tools: string[] = [];
  const creationInfo = optObject(doc, 'creationInfo', ctx, at);
  if (creationInfo !== undefined) {
    const atInfo = [...at, 'creationInfo'];
    (optArray(creationInfo, 'creators', ctx, atInfo) ?? []).forEach((creator, i) => {
      if (typeof creator !== 'string') throw invalid(ctx, fieldPath(...atInfo, 'creators', i), `must be a string, got ${typeName(creator)}`);
      const tool = /^Tool:\s*(.+)$/.exec(creator)?.[1]?.trim();
      if (tool !== undefined && !tools.includes(tool)) tools.push(tool);
    });
  }

  const packages: SbomPackage[] = [];
  (optArray(doc, 'packages', ctx, at) ?? []).forEach((raw, i) => {
    const atPkg = [...at, 'packages', i];
    if (!isObject(raw)) throw invalid(ctx, fieldPath(...atPkg), `must be an object, got ${typeName(raw)}`);
    const name = optString(raw, 'name', ctx, atPkg);
    if (name === undefined) throw invalid(ctx, fieldPath(...atPkg, 'name'), 'missing');
    if ((optString(raw, 'SPDXID', ctx, atPkg) ?? '').startsWith('SPDXRef-DocumentRoot-')) return;
    const version = optString(raw, 'versionInfo', ctx, atPkg);
    const license = spdxLicense(optString(raw, 'licenseDeclared', ctx, atPkg)) ?? spdxLicense(optString(raw, 'licenseConcluded', ctx, atPkg));
    let purl: string | undefined;
    (optArray(raw, 'externalRefs', ctx, atPkg) ?? []).forEach((ref, j) => {
      const atRef = [...atPkg, 'externalRefs', j];
      if (!isObject(ref)) throw invalid(ctx, fieldPath(...atRef), `must be an object, got ${typeName(ref)}`);
      if (purl === undefined && optString(ref, 'referenceType', ctx, atRef) === 'purl') {
        purl = optString(ref, 'referenceLocator', ctx, atRef);
      }
    });
    packages.push({
      name,
      ...(version === undefined || version === '' ? {} : { version }),
      ...(purl === undefined ? {} : { purl }),
      ...(license === undefined ? {} : { license }),
    });
  });
  return { specVersion, tools, packages };
}

function spdxLicense(value: string | undefined): string | undefined {
  if (value === undefined || value === '' || value === 'NOASSERTION' || value === 'NONE') return undefined;
  return value;
}

function readCycloneDx(doc: JsonObject, ctx: ShapeContext, at: string[]): Parts {
  const bomFormat = optString(doc, 'bomFormat', ctx, at);
  if (bomFormat !== 'CycloneDX') {
    throw invalid(ctx, fieldPath(...at, 'bomFormat'), `want "CycloneDX", got ${bomFormat === undefined ? 'nothing' : JSON.stringify(bomFormat)}`);
  }
  const specVersion = optString(doc, 'specVersion', ctx, at);
  if (specVersion === undefined) throw invalid(ctx, fieldPath(...at, 'specVersion'), 'missing');

  const tools: string[] = [];
  const metadata = optObject(doc, 'metadata', ctx, at);
  if (metadata !== undefined) {
    const atMeta = [...at, 'metadata'];
    const rawTools = metadata['tools'];
    // 1.4 and before: an array of tools; 1.5+: {components: [...], services: [...]}.
    let list: Array<{ entry: unknown; path: Array<string | number> }> = [];
    if (Array.isArray(rawTools)) {
      list = rawTools.map((entry, i) => ({ entry, path: [...atMeta, 'tools', i] }));
    } else if (isObject(rawTools)) {
      for (const key of ['components', 'services']) {
        const items = optArray(rawTools, key, ctx, [...atMeta, 'tools']) ?? [];
        list.push(...items.map((entry, i) => ({ entry, path: [...atMeta, 'tools', key, i] })));
      }
    } else if (rawTools !== undefined && rawTools !== null) {
      throw invalid(ctx, fieldPath(...atMeta, 'tools'), `must be an array or an object, got ${typeName(rawTools)}`);
    }
    for (const { entry, path } of list) {
      if (!isObject(entry)) throw invalid(ctx, fieldPath(...path), `must be an object, got ${typeName(entry)}`);
      const name = optString(entry, 'name', ctx, path);
      if (name === undefined) continue;
      const version = optString(entry, 'version', ctx, path);
      const tool = version === undefined || version === '' ? name : `${name}-${version}`;
      if (!tools.includes(tool)) tools.push(tool);
    }
  }

  const packages: SbomPackage[] = [];
  collectComponents(doc, [...at], ctx, packages);
  return { specVersion, tools, packages };
}

function collectComponents(parent: JsonObject, at: Array<string | number>, ctx: ShapeContext, out: SbomPackage[]): void {
  (optArray(parent, 'components', ctx, at) ?? []).forEach((raw, i) => {
    const atC = [...at, 'components', i];
    if (!isObject(raw)) throw invalid(ctx, fieldPath(...atC), `must be an object, got ${typeName(raw)}`);
    const name = optString(raw, 'name', ctx, atC);
    if (name === undefined) throw invalid(ctx, fieldPath(...atC, 'name'), 'missing');
    if (optString(raw, 'type', ctx, atC) !== 'file') {
      const version = optString(raw, 'version', ctx, atC);
      const purl = optString(raw, 'purl', ctx, atC);
      const license = cycloneDxLicense(raw, ctx, atC);
      const size = cycloneDxSize(raw, ctx, atC);
      out.push({
        name,
        ...(version === undefined || version === '' ? {} : { version }),
        ...(purl === undefined ? {} : { purl }),
        ...(license === undefined ? {} : { license }),
        ...(size === undefined ? {} : { size }),
      });
    }
    collectComponents(raw, atC, ctx, out);
  });
}

function cycloneDxLicense(component: JsonObject, ctx: ShapeContext, at: Array<string | number>): string | undefined {
  const names: string[] = [];
  (optArray(component, 'licenses', ctx, at) ?? []).forEach((choice, i) => {
    const atL = [...at, 'licenses', i];
    if (!isObject(choice)) throw invalid(ctx, fieldPath(...atL), `must be an object, got ${typeName(choice)}`);
    const expression = optString(choice, 'expression', ctx, atL);
    const license = optObject(choice, 'license', ctx, atL);
    const name = expression ?? (license === undefined
      ? undefined
      : (optString(license, 'id', ctx, [...atL, 'license']) ?? optString(license, 'name', ctx, [...atL, 'license'])));
    if (name !== undefined && name !== '' && !names.includes(name)) names.push(name);
  });
  return names.length === 0 ? undefined : names.join(', ');
}

/** syft writes `syft:metadata:installedSize` (bytes) for apk/deb/rpm packages. */
function cycloneDxSize(component: JsonObject, ctx: ShapeContext, at: Array<string | number>): number | undefined {
  for (const [i, prop] of (optArray(component, 'properties', ctx, at) ?? []).entries()) {
    const atP = [...at, 'properties', i];
    if (!isObject(prop)) throw invalid(ctx, fieldPath(...atP), `must be an object, got ${typeName(prop)}`);
    const name = optString(prop, 'name', ctx, atP) ?? '';
    if (!/(^|:)(installedSize|size)$/.test(name)) continue;
    const value = optString(prop, 'value', ctx, atP);
    if (value !== undefined && /^\d+$/.test(value)) return Number(value);
  }
  return undefined;
}
