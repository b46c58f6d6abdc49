/**
 * The AI read as FHIR R4 resources (issue 9 item 6):
 * - a Device: the AI model (name, version, SHA-256 of its files), named by every Observation and the
 *   Media; its id is derived from the hash, so every read by one model names one Device;
 * - a DiagnosticReport, preliminary until a radiologist decides (final, amended or entered-in-error),
 *   labelled AI-generated (security label AIAST, "artificial intelligence asserted", of HL7's
 *   v3-ObservationValue) and tagged with the model; it refers to the ImagingStudy read, its
 *   Observations and the heat map, and its conclusion says what the model found;
 * - Observations: the lesion probability of the volume and of each suspected region (with the region's
 *   volume and FA/MD), and each tissue cluster's volume and mean FA/MD (with the change since the
 *   prior study when there is one);
 * - a Media: the heat map over FA on the most suspicious slice, as a PNG (the derived image).
 * `references: 'urn'` links them by urn:uuid (the CLI's collection Bundle); `'relative'` by Type/id (the
 * outbox, where each is sent on its own). Every resource is meant to pass FhirValidator.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Device, DiagnosticReport, Media, Observation, ObservationComponent } from '@medplum/fhirtypes';
import type { AiCluster, AiRegion } from '../../shared/ipc.js';
import type { Finding } from './findings.js';

/** Codes of this product for what LOINC has no code for. */
export const NEUROWARD_CODES = 'https://neuroward.example/fhir/CodeSystem/ai-read';
const AI_ASSERTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'AIAST', display: 'Artificial Intelligence asserted' };
const UCUM = 'http://unitsofmeasure.org';

export type ReportResource = Device | DiagnosticReport | Observation | Media;
export type ReportStatus = 'preliminary' | 'final' | 'amended' | 'entered-in-error';

/** What the report says, independent of how the read was computed (the app rebuilds it from the store). */
export interface ReadFacts {
  finding: Pick<Finding, 'finding' | 'probability' | 'threshold' | 'thresholdSource'> & { slices: number };
  regions: Pick<AiRegion, 'centroidVoxel' | 'volumeMl' | 'slices' | 'probability' | 'fa' | 'md' | 'prior'>[];
  clusters: AiCluster[];
  model: { name: string; version: string; hash: string; trainedOn: string };
  backend: { name: string; detail: string };
}

export interface ReportOptions {
  /** When the read ran (effective time of the report). */
  issued?: Date;
  /** What was read (a path or a series description), for the texts. */
  sourceLabel: string;
  references: 'urn' | 'relative';
  /** The report's id (default: a new UUID). */
  reportId?: string;
  subject?: { patientId: string; display: string } | null;
  imagingStudyId?: string | null;
  heatMapPng?: { data: Buffer; width: number; height: number; slice: number } | null;
}

export interface ReportResources {
  report: DiagnosticReport;
  device: Device;
  observations: Observation[];
  media: Media | null;
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;
const pct = (p: number) => `${(p * 100).toFixed(1)} %`;

export function conclusionText(facts: Pick<ReadFacts, 'finding' | 'regions' | 'model'>): string {
  const { finding, model } = facts;
  const head =
    finding.finding === 'suspected'
      ? `Lesion suspected (probability ${pct(finding.probability)}, threshold ${pct(finding.threshold)}); ${facts.regions.length} region${facts.regions.length === 1 ? '' : 's'}`
      : `No lesion found (probability ${pct(finding.probability)}, threshold ${pct(finding.threshold)})`;
  const regions = facts.regions
    .slice(0, 5)
    .map((r) => `at voxel [${r.centroidVoxel.join(', ')}], ${r.volumeMl.toFixed(2)} ml, slices ${r.slices[0]}–${r.slices.at(-1)}, probability ${pct(r.probability)}`);
  return `${head}${regions.length ? `: ${regions.join('; ')}` : ''}. AI-generated preliminary read by ${model.name} ${model.version} (sha256 ${model.hash}); not for clinical diagnosis; a radiologist must confirm.`;
}

/** A UUID-shaped id from the model's hash: one Device per model. */
export function deviceIdOf(modelHash: string): string {
  const h = createHash('sha256').update(`neuroward-model:${modelHash}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const quantity = (value: number, unit: string, code = unit) => ({ value, unit, system: UCUM, code });
const component = (code: string, display: string, value: ReturnType<typeof quantity>): ObservationComponent => ({ code: { coding: [{ system: NEUROWARD_CODES, code, display }], text: display }, valueQuantity: value });
const mdUnits = (mm2PerS: number) => quantity(round(mm2PerS * 1e3, 5), '10*-3.mm2/s');

export function reportResources(facts: ReadFacts, options: ReportOptions): ReportResources {
  const issued = (options.issued ?? new Date()).toISOString();
  const ref = (type: string, id: string): { reference: string } => ({ reference: options.references === 'urn' ? `urn:uuid:${id}` : `${type}/${id}` });
  const { model, finding } = facts;
  const meta = { security: [AI_ASSERTED], tag: [{ system: `${NEUROWARD_CODES}/model`, code: `${model.name}|${model.version}`, display: `sha256:${model.hash}` }] };
  const subject = options.subject ? { subject: { ...ref('Patient', options.subject.patientId), display: options.subject.display } } : {};
  const deviceId = deviceIdOf(model.hash);
  const device: Device = {
    resourceType: 'Device',
    id: deviceId,
    status: 'active',
    identifier: [{ system: 'urn:ietf:rfc:3986', value: `urn:sha256:${model.hash}` }],
    deviceName: [{ name: model.name, type: 'model-name' }],
    version: [{ value: model.version }],
    note: [{ text: `Trained on: ${model.trainedOn}. Not for clinical diagnosis.` }],
  };
  const observation = (code: string, display: string, body: Partial<Observation>): Observation => ({
    resourceType: 'Observation',
    id: randomUUID(),
    meta,
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging', display: 'Imaging' }] }],
    code: { coding: [{ system: NEUROWARD_CODES, code, display }], text: display },
    ...subject,
    effectiveDateTime: issued,
    device: ref('Device', deviceId),
    ...body,
  });
  const observations: Observation[] = [
    observation('lesion-probability', 'Lesion probability (volume)', {
      valueQuantity: quantity(round(finding.probability), 'probability', '1'),
      interpretation: [{ text: finding.finding === 'suspected' ? 'suspected' : 'not found' }],
      note: [{ text: `Largest slice probability over ${finding.slices} slices; threshold ${finding.threshold} (${finding.thresholdSource}). Backend ${facts.backend.name} (${facts.backend.detail}).` }],
    }),
    ...facts.regions.map((r, i) =>
      observation('region-lesion-probability', `Lesion probability (region ${i + 1})`, {
        valueQuantity: quantity(round(r.probability), 'probability', '1'),
        bodySite: { text: `voxel [${r.centroidVoxel.join(', ')}] of ${options.sourceLabel}` },
        component: [
          component('region-volume', 'Region volume', quantity(round(r.volumeMl, 3), 'mL')),
          component('region-fa', 'Mean FA in region', quantity(round(r.fa.inside), '1')),
          component('region-md', 'Mean MD in region', mdUnits(r.md.inside)),
          ...(r.fa.clusterElsewhere !== null ? [component('cluster-fa-elsewhere', 'Mean FA of the same tissue cluster elsewhere', quantity(round(r.fa.clusterElsewhere), '1'))] : []),
          ...(r.md.clusterElsewhere !== null ? [component('cluster-md-elsewhere', 'Mean MD of the same tissue cluster elsewhere', mdUnits(r.md.clusterElsewhere))] : []),
          ...(r.prior ? [component('region-fa-change', 'FA change since the prior study', quantity(round(r.prior.faChange), '1')), component('region-md-change', 'MD change since the prior study', mdUnits(r.prior.mdChange))] : []),
        ],
      }),
    ),
    ...facts.clusters.map((c) =>
      observation('tissue-cluster', `Tissue cluster ${c.cluster} of ${facts.clusters.length} (KMeans)`, {
        valueQuantity: quantity(round(c.volumeMl, 2), 'mL'),
        component: [
          component('cluster-fa', 'Mean FA in cluster', quantity(round(c.meanFa), '1')),
          component('cluster-md', 'Mean MD in cluster', mdUnits(c.meanMd)),
          ...(c.prior ? [component('cluster-fa-change', 'FA change since the prior study', quantity(round(c.prior.faChange), '1')), component('cluster-md-change', 'MD change since the prior study', mdUnits(c.prior.mdChange))] : []),
        ],
      }),
    ),
  ];
  const png = options.heatMapPng;
  const media: Media | null = png
    ? {
        resourceType: 'Media',
        id: randomUUID(),
        meta,
        status: 'completed',
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/media-type', code: 'image', display: 'Image' }] },
        ...subject,
        createdDateTime: issued,
        device: ref('Device', deviceId),
        width: png.width,
        height: png.height,
        content: { contentType: 'image/png', data: png.data.toString('base64'), title: `AI heat map (Grad-CAM) over FA, slice ${png.slice}`, creation: issued },
        note: [{ text: `Derived image: where the model looked on slice ${png.slice} of ${options.sourceLabel} (red to yellow: more lesion evidence), over the FA map. Not for clinical diagnosis.` }],
      }
    : null;
  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    id: options.reportId ?? randomUUID(),
    meta,
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD', display: 'Radiology' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '24590-2', display: 'MR Brain' }], text: 'AI second read of a DTI series' },
    ...subject,
    effectiveDateTime: issued,
    issued,
    ...(options.imagingStudyId ? { imagingStudy: [ref('ImagingStudy', options.imagingStudyId)] } : {}),
    result: observations.map((o) => ref('Observation', o.id!)),
    ...(media ? { media: [{ comment: 'AI heat map (Grad-CAM)', link: ref('Media', media.id!) }] } : {}),
    conclusion: conclusionText({ finding, regions: facts.regions, model }),
  };
  return { report, device, observations, media };
}

/** The radiologist's decision applied to the report and its Observations (status, conclusion, who). */
export function decidedReport(
  resources: { report: DiagnosticReport; observations: Observation[] },
  decision: { status: Exclude<ReportStatus, 'preliminary'>; by: string; comment: string; conclusion?: string | undefined; at: Date },
): { report: DiagnosticReport; observations: Observation[] } {
  const who = { display: decision.by };
  const note =
    decision.status === 'final'
      ? `Confirmed by ${decision.by}: ${decision.comment}`
      : decision.status === 'amended'
        ? `Amended by ${decision.by}: ${decision.comment}`
        : `Rejected by ${decision.by} (entered in error): ${decision.comment}`;
  const aiConclusion = resources.report.conclusion ?? '';
  const conclusion = decision.status === 'amended' ? `${decision.conclusion ?? ''} (Radiologist's amendment of the AI read. ${note}. AI read was: ${aiConclusion})` : `${aiConclusion} ${note}.`;
  return {
    report: { ...resources.report, status: decision.status, issued: decision.at.toISOString(), resultsInterpreter: [who], conclusion },
    observations: resources.observations.map((o) => ({
      ...o,
      // An amended report's AI values stay what the model said; the radiologist's word is the report's.
      status: decision.status === 'amended' ? 'final' : decision.status,
      performer: [who],
    })),
  };
}

/** The CLI's report: a `collection` Bundle of every resource, linked by urn:uuid. */
export function analysisBundle(facts: ReadFacts, options: Omit<ReportOptions, 'references'>): Bundle<ReportResource> {
  const { report, device, observations, media } = reportResources(facts, { ...options, references: 'urn' });
  const entry = (resource: ReportResource): BundleEntry<ReportResource> => ({ fullUrl: `urn:uuid:${resource.id!}`, resource });
  return {
    resourceType: 'Bundle',
    type: 'collection',
    timestamp: report.issued!,
    entry: [entry(report), entry(device), ...observations.map(entry), ...(media ? [entry(media)] : [])],
  };
}
