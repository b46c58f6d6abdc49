/**
 * The read as FHIR R4 (issue 9 item 6, the minimal first slice): a `collection` Bundle holding
 * - a Device: the AI model (name, version, SHA-256 of its files), which every Observation names;
 * - a DiagnosticReport, status preliminary (nothing is final without a radiologist), labelled
 *   AI-generated (security label AIAST, "artificial intelligence asserted", of HL7's
 *   v3-ObservationValue) and tagged with the model, whose conclusion says what the model found;
 * - one lesion-probability Observation for the volume and one per suspected region.
 * The radiologist's confirm / amend / reject, the ImagingStudy reference and the heat map as a derived
 * image come with the review workflow.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Device, DiagnosticReport, Observation } from '@medplum/fhirtypes';
import type { AnalysisResult } from './pipeline.js';

/** Codes of this product for what LOINC has no code for. */
export const NEUROWARD_CODES = 'https://neuroward.example/fhir/CodeSystem/ai-read';
const AI_ASSERTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'AIAST', display: 'Artificial Intelligence asserted' };

export type ReportResource = Device | DiagnosticReport | Observation;

export interface ReportOptions {
  /** When the read ran (effective time of the report). */
  issued?: Date;
  /** What was read (a path or a series UID), for the report's text. */
  sourceLabel: string;
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

export function conclusionText(result: AnalysisResult): string {
  const { finding, model } = result;
  const pct = (p: number) => `${(p * 100).toFixed(1)} %`;
  const head =
    finding.finding === 'suspected'
      ? `Lesion suspected (probability ${pct(finding.probability)}, threshold ${pct(finding.threshold)}); ${finding.regions.length} region${finding.regions.length === 1 ? '' : 's'}`
      : `No lesion found (probability ${pct(finding.probability)}, threshold ${pct(finding.threshold)})`;
  const regions = finding.regions
    .slice(0, 5)
    .map((r) => `at voxel [${r.centroidVoxel.join(', ')}], ${r.volumeMl.toFixed(2)} ml, slices ${r.slices[0]}–${r.slices.at(-1)}, probability ${pct(r.probability)}`);
  return `${head}${regions.length ? `: ${regions.join('; ')}` : ''}. AI-generated preliminary read by ${model.name} ${model.version} (sha256 ${model.hash}); not for clinical diagnosis; a radiologist must confirm.`;
}

/** The Bundle; every resource in it is meant to pass FhirValidator (the CLI checks before writing). */
export function analysisBundle(result: AnalysisResult, options: ReportOptions): Bundle<ReportResource> {
  const issued = (options.issued ?? new Date()).toISOString();
  const { model, finding } = result;
  const deviceUrl = `urn:uuid:${randomUUID()}`;
  const meta = { security: [AI_ASSERTED], tag: [{ system: `${NEUROWARD_CODES}/model`, code: `${model.name}|${model.version}`, display: `sha256:${model.hash}` }] };
  const device: Device = {
    resourceType: 'Device',
    status: 'active',
    identifier: [{ system: 'urn:ietf:rfc:3986', value: `urn:sha256:${model.hash}` }],
    deviceName: [{ name: model.name, type: 'model-name' }],
    version: [{ value: model.version }],
    note: [{ text: `Trained on: ${model.trainedOn}. Backend: ${result.backend.name} (${result.backend.detail}).` }],
  };
  const probabilityObservation = (probability: number, code: string, display: string, extra: Partial<Observation> = {}): Observation => ({
    resourceType: 'Observation',
    meta,
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging', display: 'Imaging' }] }],
    code: { coding: [{ system: NEUROWARD_CODES, code, display }], text: display },
    effectiveDateTime: issued,
    valueQuantity: { value: round(probability), unit: 'probability', system: 'http://unitsofmeasure.org', code: '1' },
    device: { reference: deviceUrl },
    ...extra,
  });
  const observations: Observation[] = [
    probabilityObservation(finding.probability, 'lesion-probability', 'Lesion probability (volume)', {
      interpretation: [{ text: finding.finding === 'suspected' ? 'suspected' : 'not found' }],
      note: [{ text: `Largest slice probability over ${finding.slices.length} slices; threshold ${finding.threshold} (${finding.thresholdSource}).` }],
    }),
    ...finding.regions.map((r, i) =>
      probabilityObservation(r.probability, 'region-lesion-probability', `Lesion probability (region ${i + 1})`, {
        bodySite: { text: `voxel [${r.centroidVoxel.join(', ')}] of ${options.sourceLabel}` },
        component: [
          { code: { coding: [{ system: NEUROWARD_CODES, code: 'region-volume', display: 'Region volume' }] }, valueQuantity: { value: round(r.volumeMl, 3), unit: 'mL', system: 'http://unitsofmeasure.org', code: 'mL' } },
          { code: { coding: [{ system: NEUROWARD_CODES, code: 'region-fa', display: 'Mean FA in region' }] }, valueQuantity: { value: round(r.fa.inside), unit: '1', system: 'http://unitsofmeasure.org', code: '1' } },
          { code: { coding: [{ system: NEUROWARD_CODES, code: 'region-md', display: 'Mean MD in region' }] }, valueQuantity: { value: round(r.md.inside * 1e3, 5), unit: '10*-3.mm2/s', system: 'http://unitsofmeasure.org', code: '10*-3.mm2/s' } },
        ],
      }),
    ),
  ];
  const observationUrls = observations.map(() => `urn:uuid:${randomUUID()}`);
  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    meta,
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD', display: 'Radiology' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '24590-2', display: 'MR Brain' }], text: 'AI second read of a DTI series' },
    effectiveDateTime: issued,
    issued,
    result: observationUrls.map((reference) => ({ reference })),
    conclusion: conclusionText(result),
  };
  const entry = (fullUrl: string, resource: ReportResource): BundleEntry<ReportResource> => ({ fullUrl, resource });
  return {
    resourceType: 'Bundle',
    type: 'collection',
    timestamp: issued,
    entry: [entry(`urn:uuid:${randomUUID()}`, report), entry(deviceUrl, device), ...observations.map((o, i) => entry(observationUrls[i]!, o))],
  };
}
