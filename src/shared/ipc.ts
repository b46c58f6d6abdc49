/**
 * The one IPC contract. Each row: channel → request schema, response schema, permission, audit action.
 * Both hosts (Electron ipcMain, headless WebSocket) register handlers from this table through one
 * dispatcher, so validation, RBAC and audit happen in exactly one place. The preload exposes these
 * channel names as `window.neuroward` and nothing else.
 *
 * Requests are strict: unknown keys are a `bad-request`, not silently dropped.
 * Responses are parsed on the way out, which strips anything a handler should not have returned.
 */
import { z } from 'zod';
import { ROLES, PERMISSIONS, type ChannelPermission } from './roles.js';

// ---------------------------------------------------------------------------------------------
// Shared shapes
// ---------------------------------------------------------------------------------------------

export const usernameSchema = z
  .string()
  .trim()
  .min(3, 'at least 3 characters')
  .max(64, 'at most 64 characters')
  .regex(/^[a-zA-Z0-9._-]+$/, 'letters, digits, dot, underscore and hyphen only');
export const passwordSchema = z.string().min(10, 'at least 10 characters').max(256, 'at most 256 characters');
export const displayNameSchema = z.string().trim().min(1, 'required').max(120, 'at most 120 characters');
export const roleSchema = z.enum(ROLES);
export const idSchema = z.string().uuid('not a valid id');
const isoTime = z.string();

export const userSchema = z.object({
  id: idSchema,
  username: z.string(),
  displayName: z.string(),
  role: roleSchema,
  disabled: z.boolean(),
  synthetic: z.boolean(),
  lockedUntil: isoTime.nullable(),
  failedSignIns: z.number().int(),
  mustChangePassword: z.boolean(),
  createdAt: isoTime,
});
export type User = z.infer<typeof userSchema>;

export const sessionInfoSchema = z.object({
  /** Opaque, bound to the window / WebSocket that signed in; used only to resume after a reload. */
  token: z.string(),
  user: z.object({ id: idSchema, username: z.string(), displayName: z.string(), role: roleSchema }),
  permissions: z.array(z.enum(PERMISSIONS)),
  locked: z.boolean(),
  idleLockMs: z.number().int(),
  expiresAt: isoTime,
  mustChangePassword: z.boolean(),
  breakGlass: z.object({ reason: z.string(), until: isoTime }).nullable(),
});
export type SessionInfo = z.infer<typeof sessionInfoSchema>;

export const storeStateSchema = z.enum(['uninitialized', 'locked', 'ready', 'error']);
export type StoreState = z.infer<typeof storeStateSchema>;
export const passphraseSourceSchema = z.enum(['prompt', 'env', 'file', 'safe-storage']);
export type PassphraseSource = z.infer<typeof passphraseSourceSchema>;

export const appStatusSchema = z.object({
  version: z.string(),
  host: z.enum(['electron', 'headless']),
  store: storeStateSchema,
  storeError: z.object({ code: z.string(), message: z.string() }).nullable(),
  /** Where the store key comes from; `prompt` means the first screen asks for the passphrase. */
  passphraseSource: passphraseSourceSchema,
  /** True until the first administrator exists. */
  setupRequired: z.boolean(),
  demo: z.boolean(),
  session: sessionInfoSchema.nullable(),
});
export type AppStatus = z.infer<typeof appStatusSchema>;

export const sexSchema = z.enum(['female', 'male', 'other', 'unknown']);
const birthDateSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'use YYYY-MM-DD')
  .refine((s) => !Number.isNaN(Date.parse(s)) && s <= new Date().toISOString().slice(0, 10), 'not a valid past date');

/** What a list shows. A restricted record without break-glass shows only its id and MRN. */
export const patientSummarySchema = z.object({
  id: idSchema,
  mrn: z.string(),
  restricted: z.boolean(),
  synthetic: z.boolean(),
  /** Null when the record is restricted and no break-glass grant is active. */
  name: z.string().nullable(),
  birthDate: z.string().nullable(),
  sex: sexSchema.nullable(),
});
export type PatientSummary = z.infer<typeof patientSummarySchema>;

export const patientSchema = z.object({
  id: idSchema,
  mrn: z.string(),
  givenName: z.string(),
  familyName: z.string(),
  birthDate: z.string(),
  sex: sexSchema,
  restricted: z.boolean(),
  synthetic: z.boolean(),
  version: z.number().int(),
  createdAt: isoTime,
  updatedAt: isoTime,
});
export type Patient = z.infer<typeof patientSchema>;

export const auditEntrySchema = z.object({
  seq: z.number().int(),
  id: z.string(),
  recordedAt: isoTime,
  actorUserId: z.string().nullable(),
  actorUsername: z.string().nullable(),
  actorRole: z.string().nullable(),
  action: z.string(),
  channel: z.string().nullable(),
  outcome: z.enum(['success', 'denied', 'error']),
  outcomeDetail: z.string().nullable(),
  entityType: z.string().nullable(),
  entityId: z.string().nullable(),
  patientId: z.string().nullable(),
  breakGlass: z.boolean(),
  hash: z.string(),
});
export type AuditEntryView = z.infer<typeof auditEntrySchema>;

/** `added`: entries stored past the recorded head, i.e. written outside the ledger. */
export const auditProblemKindSchema = z.enum(['edited', 'deleted', 'reordered', 'truncated', 'added', 'guard-removed']);
export type AuditProblemKind = z.infer<typeof auditProblemKindSchema>;
/** seq: the first entry concerned (0 for the schema's guard). */
export const auditProblemSchema = z.object({ seq: z.number().int(), kind: auditProblemKindSchema, message: z.string() });
export type AuditProblem = z.infer<typeof auditProblemSchema>;
export const auditVerifyResultSchema = z.object({
  /** No problem at all. */
  ok: z.boolean(),
  /** Entries checked (rows in the table). */
  entries: z.number().int(),
  /** The last stored entry's seq and hash. */
  headSeq: z.number().int(),
  headHash: z.string(),
  /** Every problem found walking the whole chain, in chain order; one problem never hides a later one. */
  problems: z.array(auditProblemSchema),
  /** Problems found beyond those listed (the list is capped; 0 normally). */
  unlisted: z.number().int().min(0),
  /** The first of `problems`, or null: kept for older readers. */
  problem: auditProblemSchema.nullable(),
  checkedAt: isoTime,
});
export type AuditVerifyResult = z.infer<typeof auditVerifyResultSchema>;

export const connectivitySchema = z.object({
  /** True when at least one configured FHIR server answered its last probe. */
  online: z.boolean(),
  servers: z.array(
    z.object({ name: z.string(), baseUrl: z.string(), reachable: z.boolean().nullable(), lastCheckedAt: isoTime.nullable() }),
  ),
  outboxPending: z.number().int(),
});
export type Connectivity = z.infer<typeof connectivitySchema>;

export const MAP_KINDS = ['fa', 'md', 'ad', 'rd', 'v1', 'colour-fa', 'mask'] as const;
export type MapKind = (typeof MAP_KINDS)[number];
const tuple3 = z.tuple([z.number(), z.number(), z.number()]);

/** Who a DICOM header says a series is of (0010,0010/0020/0030/0040), in the record's shapes. */
export const dicomPatientSchema = z.object({
  /** Patient ID (0010,0020). */
  id: z.string().nullable(),
  /** Patient's Name as stored (Family^Given^…). */
  name: z.string().nullable(),
  familyName: z.string().nullable(),
  givenName: z.string().nullable(),
  /** YYYY-MM-DD */
  birthDate: z.string().nullable(),
  sex: sexSchema.nullable(),
});
export type DicomPatientView = z.infer<typeof dicomPatientSchema>;

/** One field of the DICOM identity against a record: `missing` when either lacks it. */
const agreementSchema = z.enum(['same', 'different', 'missing']);
export const patientAgreementSchema = z.object({ mrn: agreementSchema, familyName: agreementSchema, givenName: agreementSchema, birthDate: agreementSchema, sex: agreementSchema });
export type PatientAgreementView = z.infer<typeof patientAgreementSchema>;

/**
 * The DICOM identity against the local records (src/main/imaging/patient-match.ts): `exact` (MRN = Patient
 * ID, nothing disagrees), `conflict` (MRN = Patient ID, but name or birth date disagrees), `candidates`
 * (same normalised family name and birth date), `none`, `no-identity` (the files name nobody).
 * A restricted record without break-glass: MRN only, and `agreement` null.
 */
export const patientMatchSchema = z.object({
  kind: z.enum(['exact', 'conflict', 'candidates', 'none', 'no-identity']),
  patient: patientSummarySchema.nullable(),
  agreement: patientAgreementSchema.nullable(),
  candidates: z.array(z.object({ patient: patientSummarySchema, agreement: patientAgreementSchema.nullable() })),
  message: z.string(),
});
export type PatientMatchView = z.infer<typeof patientMatchSchema>;

export const seriesSummaryViewSchema = z.object({
  seriesInstanceUid: z.string(),
  seriesNumber: z.number().int().nullable(),
  seriesDescription: z.string(),
  manufacturer: z.string(),
  layout: z.enum(['classic', 'enhanced', 'mosaic']),
  fileCount: z.number().int(),
  volumes: z.number().int(),
  dims: tuple3,
  bvals: z.array(z.number()),
  isDiffusion: z.boolean(),
  /** Null when the files name nobody. */
  patient: dicomPatientSchema.nullable(),
  match: patientMatchSchema,
});
export type SeriesSummaryView = z.infer<typeof seriesSummaryViewSchema>;

export const imagingJobSchema = z.object({
  id: z.string(),
  state: z.enum(['running', 'done', 'failed']),
  stage: z.string(),
  /** 0..1 over the whole import (reading, fitting, saving). */
  fraction: z.number(),
  message: z.string(),
  source: z.string(),
  studyId: z.string().nullable(),
  error: z.string().nullable(),
  startedAt: isoTime,
  /** The record the study went to (null: none, flagged). */
  patientId: z.string().nullable(),
  /** What the reader must know about the result, e.g. no diffusion contrast. */
  warnings: z.array(z.string()),
});
export type ImagingJob = z.infer<typeof imagingJobSchema>;

/** Does the series carry diffusion contrast at all (src/main/imaging/contrast.ts)? */
export const diffusionContrastSchema = z.object({
  status: z.enum(['present', 'absent', 'partial', 'undetermined']),
  /** 0-based volumes (b ≥ 200 s/mm²) whose mean signal drop inside the brain mask is under 5 %. */
  flatVolumes: z.array(z.number().int()),
  decisiveVolumes: z.number().int(),
  attenuation: z.object({ min: z.number(), max: z.number() }).nullable(),
  maxDifference: z.number().nullable(),
  voxels: z.number().int(),
  message: z.string().nullable(),
});
export type DiffusionContrastView = z.infer<typeof diffusionContrastSchema>;

/** How a study came to its patient. `matched`: MRN = Patient ID; `override`: linked despite differences, with the reason. */
export const patientLinkSchema = z.object({
  decision: z.enum(['matched', 'confirmed', 'override', 'created', 'unlinked']),
  differences: z.array(z.string()),
  reason: z.string().nullable(),
  by: z.string(),
  at: isoTime,
});

export const studySchema = z.object({
  id: idSchema,
  createdAt: isoTime,
  createdBy: z.string(),
  patientId: idSchema.nullable(),
  description: z.string(),
  sourceKind: z.enum(['dicom', 'nifti']),
  sourcePath: z.string(),
  manufacturer: z.string().nullable(),
  /** [nx, ny, nz, volumes] */
  dims: z.tuple([z.number(), z.number(), z.number(), z.number()]),
  pixdim: tuple3,
  bvals: z.array(z.number()),
  masked: z.boolean(),
  fitSeconds: z.number(),
  /** `maskedVoxels`: voxels in the brain mask, null for an unmasked fit; `fittedVoxels`: voxels fitted. */
  summary: z.object({ maskedVoxels: z.number().int().nullable(), fittedVoxels: z.number().int(), meanFa: z.number(), meanMd: z.number() }),
  /** The local record (null: the study belongs to no patient yet, flagged). */
  patient: z.object({ mrn: z.string(), name: z.string() }).nullable(),
  /** Who the DICOM header says the study is of; null for NIfTI or when it names nobody. */
  dicomPatient: dicomPatientSchema.nullable(),
  /** Null for studies imported before the decision was recorded. */
  patientLink: patientLinkSchema.nullable(),
  /** Null for studies imported before the check. */
  diffusionContrast: diffusionContrastSchema.nullable(),
  /** What the reader must know before trusting the maps. */
  warnings: z.array(z.string()),
});
export type Study = z.infer<typeof studySchema>;

/** The maps an AI read stores beside its study (src/main/analysis/ai-read-service.ts). */
export const AI_MAP_KINDS = ['heatmap', 'clusters'] as const;
export type AiMapKind = (typeof AI_MAP_KINDS)[number];

export const AI_READ_STAGES = ['queued', 'loading', 'checks', 'backend', 'model', 'fit', 'features', 'pca-kmeans', 'slices', 'cnn', 'findings', 'saving'] as const;

/** An AI read running in the background, as the window that started it sees it. */
export const aiReadJobSchema = z.object({
  id: z.string(),
  studyId: idSchema,
  state: z.enum(['running', 'done', 'failed', 'cancelled']),
  stage: z.enum([...AI_READ_STAGES, 'done', 'failed', 'cancelled']),
  /** 0..1 within the stage. */
  stageFraction: z.number(),
  /** 0..1 over the whole read (stages weighted by their usual share of the time). */
  fraction: z.number(),
  message: z.string(),
  readId: idSchema.nullable(),
  error: z.string().nullable(),
  startedAt: isoTime,
  /** Each finished stage's wall time. */
  stages: z.array(z.object({ name: z.string(), ms: z.number() })),
});
export type AiReadJob = z.infer<typeof aiReadJobSchema>;

const tissueComparisonSchema = z.object({ inside: z.number(), clusterElsewhere: z.number().nullable() });
/** Change since the prior study's read (null when there is none, or nothing to compare with). */
const changeSchema = z.object({ faChange: z.number(), mdChange: z.number() });
export const aiRegionSchema = z.object({
  /** [i, j, k] voxel indices of the study's grid. */
  centroidVoxel: z.tuple([z.number().int(), z.number().int(), z.number().int()]),
  /** Scanner coordinates of the centroid (mm, the study's affine). */
  centroidMm: tuple3,
  voxels: z.number().int(),
  volumeMl: z.number(),
  slices: z.array(z.number().int()),
  probability: z.number(),
  cluster: z.number().int(),
  fa: tissueComparisonSchema,
  /** mm²/s */
  md: tissueComparisonSchema,
  /** The prior read's region nearest in scanner coordinates (within 15 mm), and how FA/MD changed. */
  prior: changeSchema.extend({ distanceMm: z.number(), priorVolumeMl: z.number() }).nullable(),
});
export type AiRegion = z.infer<typeof aiRegionSchema>;
export const aiClusterSchema = z.object({
  cluster: z.number().int(),
  voxels: z.number().int(),
  volumeMl: z.number(),
  meanFa: z.number(),
  /** mm²/s */
  meanMd: z.number(),
  prior: changeSchema.nullable(),
});
export type AiCluster = z.infer<typeof aiClusterSchema>;
export const aiDecisionSchema = z.object({
  kind: z.enum(['confirmed', 'amended', 'rejected']),
  at: isoTime,
  by: z.string(),
  comment: z.string(),
  /** Amended: the radiologist's conclusion and finding. */
  conclusion: z.string().nullable(),
  finding: z.enum(['suspected', 'not-found']).nullable(),
});
export const aiReadSchema = z.object({
  id: idSchema,
  studyId: idSchema,
  patientId: idSchema,
  createdAt: isoTime,
  createdBy: z.string(),
  model: z.object({ name: z.string(), version: z.string(), hash: z.string() }),
  backend: z.object({ name: z.string(), detail: z.string(), skipped: z.array(z.object({ name: z.string(), reason: z.string() })) }),
  finding: z.enum(['suspected', 'not-found']),
  probability: z.number(),
  threshold: z.number(),
  conclusion: z.string(),
  regions: z.array(aiRegionSchema),
  clusters: z.array(aiClusterSchema),
  slices: z.array(z.object({ z: z.number().int(), probability: z.number() })),
  stages: z.array(z.object({ name: z.string(), ms: z.number() })),
  /** The FHIR DiagnosticReport's status. */
  status: z.enum(['preliminary', 'final', 'amended', 'entered-in-error']),
  decision: aiDecisionSchema.nullable(),
  /** The read of this patient's previous study that the changes compare with. */
  prior: z.object({ readId: idSchema, studyId: idSchema, studyDescription: z.string(), createdAt: isoTime }).nullable(),
  reportId: idSchema,
});
export type AiRead = z.infer<typeof aiReadSchema>;

export const notificationSchema = z.object({
  id: idSchema,
  createdAt: isoTime,
  kind: z.string(),
  title: z.string(),
  body: z.string(),
  patientId: idSchema.nullable(),
  subject: z.object({ type: z.string(), id: z.string() }).nullable(),
  readAt: isoTime.nullable(),
});
export type Notification = z.infer<typeof notificationSchema>;

export const volumeDataSchema = z.object({
  studyId: idSchema,
  key: z.string(),
  dims: tuple3,
  /** 1 for scalar maps and DWI volumes, 3 for v1 and colour FA (interleaved per voxel). */
  components: z.union([z.literal(1), z.literal(3)]),
  pixdim: tuple3,
  affine: z.array(z.array(z.number()).length(4)).length(4),
  range: z.tuple([z.number(), z.number()]),
  /** Little-endian float32 voxels (x fastest), base64: one transport for both hosts, audited like any read. */
  dataBase64: z.string(),
});
export type VolumeData = z.infer<typeof volumeDataSchema>;

/** A file or folder on this workstation, as an absolute path (a relative one would resolve against the server's working folder). */
const pathSchema = z
  .string()
  .trim()
  .min(1, 'required')
  .max(4096)
  .refine((p) => /^(\/|[A-Za-z]:[\\/]|\\\\)/.test(p), 'paths must be absolute');
/** Why a study goes to a record that differs from its DICOM identity (audited). */
const overrideSchema = z.string().trim().min(10, 'say why in at least 10 characters').max(500);

const vitalsSchema = z.object({
  ts: isoTime,
  hr: z.number().nullable(),
  spo2: z.number().nullable(),
  rr: z.number().nullable(),
  tempC: z.number().nullable(),
  sbp: z.number().nullable(),
  dbp: z.number().nullable(),
  acvpu: z.enum(['A', 'C', 'V', 'P', 'U']).nullable(),
  o2: z.boolean().nullable(),
});
export type Vitals = z.infer<typeof vitalsSchema>;

export const news2ViewSchema = z.object({
  aggregate: z.number().int(),
  risk: z.enum(['low', 'low-medium', 'medium', 'high']),
  complete: z.boolean(),
  anySingleThree: z.boolean(),
  /** What the score asks of the ward (RCP chart 4), e.g. "Minimum 1-hourly; urgent ward-based response". */
  response: z.string(),
});

/** NEWS2 SpO2 scale (RCP 2017): 2 only for hypercapnic respiratory failure, prescribed by a clinician. */
export const spo2ScaleSchema = z.union([z.literal(1), z.literal(2)]);
export type Spo2Scale = z.infer<typeof spo2ScaleSchema>;

/** A ward bed as `<ward>/<bed>` (the MQTT topic's segments). */
export const bedKeySchema = z.string().regex(/^[A-Za-z0-9_-]{1,32}\/[A-Za-z0-9_-]{1,32}$/, 'a bed as <ward>/<bed>');

/**
 * The patient admitted to a bed, as the board shows it. `name` is null for a restricted record unless
 * the viewer holds break-glass (the MRN is shown, as in every list).
 */
export const bedOccupantSchema = z.object({
  admissionId: idSchema,
  patientId: idSchema,
  mrn: z.string(),
  name: z.string().nullable(),
  restricted: z.boolean(),
  synthetic: z.boolean(),
  /** When the stay in this bed began, and who recorded it. */
  since: isoTime,
  by: z.string(),
});
export type BedOccupantView = z.infer<typeof bedOccupantSchema>;

/**
 * One stay of a patient in one bed (ADT). A transfer ends the stay (`endKind` 'transfer') and starts
 * one in the new bed, in the same FHIR Encounter; a discharge ends it. `name` as in bedOccupantSchema.
 */
export const admissionViewSchema = z.object({
  id: idSchema,
  patientId: idSchema,
  mrn: z.string(),
  name: z.string().nullable(),
  restricted: z.boolean(),
  synthetic: z.boolean(),
  bedKey: z.string(),
  ward: z.string(),
  bed: z.string(),
  admittedAt: isoTime,
  admittedBy: z.string(),
  /** Why the patient came to this bed (admission or transfer note). */
  reason: z.string().nullable(),
  /** Null while the patient is in this bed. */
  dischargedAt: isoTime.nullable(),
  dischargedBy: z.string().nullable(),
  endKind: z.enum(['transfer', 'discharge']).nullable(),
  endReason: z.string().nullable(),
  encounterId: idSchema,
});
export type AdmissionView = z.infer<typeof admissionViewSchema>;

export const bedViewSchema = z.object({
  /** `<ward>/<bed>` as in the MQTT topic. */
  key: z.string(),
  ward: z.string(),
  bed: z.string(),
  patientRef: z.string().nullable(),
  latest: vitalsSchema.nullable(),
  news2: news2ViewSchema.nullable(),
  /** The last hour, one point per minute (latest value in that minute; null where nothing arrived). */
  trend: z.object({ hr: z.array(z.number().nullable()), spo2: z.array(z.number().nullable()), rr: z.array(z.number().nullable()), sbp: z.array(z.number().nullable()) }),
  /** The minute (ms since the epoch / 60 000) of the trend's last point. */
  trendMinute: z.number().int(),
  /** Technical conditions of this bed now (no data, device fault, impossible value). */
  technical: z.array(z.string()),
  /** NEWS2 SpO2 scale the bed is scored on: the setting of the patient in it (1 unless a clinician set 2). */
  spo2Scale: spo2ScaleSchema,
  /** Who set scale 2 for this patient, when and why; null on scale 1. */
  spo2ScaleSetBy: z.object({ by: z.string(), reason: z.string(), at: isoTime }).nullable(),
  /** The patient admitted to the bed now (ADT), or null: then `patientRef` is the one a monitor named, if any. */
  admission: bedOccupantSchema.nullable(),
});
export type BedView = z.infer<typeof bedViewSchema>;

/** A bed in `ward.update` (see shared/ward-trend.ts): its trend whole only when more than the last point changed. */
export const bedUpdateSchema = bedViewSchema.extend({
  /** The whole hour when more than the current minute's point changed since the previous update; else null. */
  trend: bedViewSchema.shape.trend.nullable(),
  /** The current minute's point (the trend's last). */
  trendNow: z.object({ hr: z.number().nullable(), spo2: z.number().nullable(), rr: z.number().nullable(), sbp: z.number().nullable() }),
});
export type BedUpdate = z.infer<typeof bedUpdateSchema>;

export const alarmViewSchema = z.object({
  id: z.string(),
  /** null: the whole ward (monitoring lost). */
  bedKey: z.string().nullable(),
  kind: z.enum(['physiological', 'technical']),
  condition: z.string(),
  priority: z.enum(['high', 'medium', 'low']),
  state: z.enum(['active', 'latched']),
  message: z.string(),
  raisedAt: isoTime,
  acknowledged: z.object({ by: z.string(), reason: z.string(), at: isoTime }).nullable(),
  pausedUntil: isoTime.nullable(),
  escalationLevel: z.number().int(),
  /** How severe the condition is now; null while absent. Lower than `priority` when the alarm latched a higher one. */
  currentSeverity: z.enum(['high', 'medium', 'low']).nullable(),
});
export type AlarmView = z.infer<typeof alarmViewSchema>;

export const wardBoardSchema = z.object({
  beds: z.array(bedViewSchema),
  /** Sorted by priority, unacknowledged first. */
  alarms: z.array(alarmViewSchema),
  link: z.object({ up: z.boolean(), since: isoTime.nullable(), broker: z.string() }),
  counters: z.object({ accepted: z.number().int(), rejected: z.record(z.string(), z.number().int()) }),
});
export type WardBoard = z.infer<typeof wardBoardSchema>;

/** A ward or bed name as it appears in the MQTT topic `ward/<ward>/bed/<bed>/vitals`. */
export const topicSegmentSchema = z.string().trim().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - only (at most 32)');

/** A bedside monitor's credential for the embedded MQTT broker (never its password: that is shown once, at creation). */
export const monitorCredentialSchema = z.object({
  id: idSchema,
  /** The MQTT user name the monitor connects with. */
  username: z.string(),
  ward: z.string(),
  bed: z.string(),
  /** The one topic it may publish to: `ward/<ward>/bed/<bed>/vitals`. */
  topic: z.string(),
  label: z.string().nullable(),
  createdAt: isoTime,
  createdBy: z.string(),
  revokedAt: isoTime.nullable(),
  revokedBy: z.string().nullable(),
  lastConnectedAt: isoTime.nullable(),
  /** Connected to the embedded broker right now. */
  connected: z.boolean(),
});
export type MonitorCredential = z.infer<typeof monitorCredentialSchema>;

/**
 * What the administrator hands to the monitors (or to `neuroward simulate-ward --credentials FILE`):
 * the broker and, per bed, the user name and the password generated for it. Returned once.
 */
export const monitorCredentialsFileSchema = z.object({
  v: z.literal(1),
  /** The embedded broker as this workstation reaches it; a monitor on the ward network uses the workstation's address. */
  broker: z.string().nullable(),
  monitors: z.array(z.object({ ward: z.string(), bed: z.string(), topic: z.string(), username: z.string(), password: z.string() })),
});
export type MonitorCredentialsFile = z.infer<typeof monitorCredentialsFileSchema>;

/** One remote FHIR server as the Sync screen shows it (src/main/fhir/sync/sync-engine.ts status). */
export const syncServerStatusSchema = z.object({
  name: z.string(),
  baseUrl: z.string(),
  /** '*' (everything) or the resource types routed to this server. */
  resourceTypes: z.union([z.literal('*'), z.array(z.string())]),
  /** Null before the first request; false when the last attempt got no FHIR answer (link down, timeout, not FHIR). */
  reachable: z.boolean().nullable(),
  /** Outbox rows this server has not finished. */
  pending: z.number().int(),
  /** Rows that may have reached the server without an answer (read back before they are resent). */
  inDoubt: z.number().int(),
  consecutiveFailures: z.number().int(),
  lastAttemptAt: isoTime.nullable(),
  lastSuccessAt: isoTime.nullable(),
  /** The server's current error (cleared by the next pass that goes through), and when it was seen. */
  lastError: z.string().nullable(),
  lastErrorAt: isoTime.nullable(),
  nextAttemptAt: isoTime.nullable(),
  openConflicts: z.number().int(),
  openDeadLetters: z.number().int(),
  /** The incremental pull from this server, per resource type (empty: this server is not pulled from). */
  pull: z.array(
    z.object({ resourceType: z.string(), lastUpdated: isoTime.nullable(), lastSuccessAt: isoTime.nullable(), lastError: z.string().nullable(), lastErrorAt: isoTime.nullable() }),
  ),
});
export type SyncServerStatusView = z.infer<typeof syncServerStatusSchema>;

export const syncStatusSchema = z.object({
  /** False: no FHIR server is configured (changes stay in the outbox); true: `servers` lists them. */
  configured: z.boolean(),
  /** The sync engine runs (the store is open and servers are configured). */
  running: z.boolean(),
  servers: z.array(syncServerStatusSchema),
  outboxPending: z.number().int(),
});
export type SyncStatusView = z.infer<typeof syncStatusSchema>;

/** One top-level element of a conflicting resource in the three copies, as JSON text (null: absent). */
export const syncFieldDifferenceSchema = z.object({
  field: z.string(),
  base: z.string().nullable(),
  mine: z.string().nullable(),
  theirs: z.string().nullable(),
  differs: z.boolean(),
  changedByMe: z.boolean(),
  changedByThem: z.boolean(),
});
export type SyncFieldDifference = z.infer<typeof syncFieldDifferenceSchema>;

const fhirJsonSchema = z.record(z.string(), z.unknown());
export const syncConflictSchema = z.object({
  id: z.number().int(),
  server: z.string(),
  resourceType: z.string(),
  resourceId: z.string(),
  /** What this workstation did: wrote (`put`) or deleted the resource. */
  localOperation: z.enum(['put', 'delete']),
  httpStatus: z.number().int(),
  baseVersionId: z.string().nullable(),
  remoteVersionId: z.string().nullable(),
  detectedAt: isoTime,
  status: z.enum(['open', 'kept-mine', 'took-theirs']),
  resolvedAt: isoTime.nullable(),
  resolvedBy: z.string().nullable(),
  /**
   * The copies and their field-level differences: null when this session may not read the record's
   * content (a role without patients:read, or a restricted patient without break-glass).
   */
  content: z
    .object({ base: fhirJsonSchema.nullable(), mine: fhirJsonSchema.nullable(), theirs: fhirJsonSchema.nullable(), fields: z.array(syncFieldDifferenceSchema) })
    .nullable(),
  /** Why `content` is null, in words. */
  contentWithheld: z.string().nullable(),
});
export type SyncConflictView = z.infer<typeof syncConflictSchema>;

export const syncDeadLetterSchema = z.object({
  id: z.number().int(),
  server: z.string(),
  outboxId: z.number().int(),
  resourceType: z.string(),
  resourceId: z.string(),
  localOperation: z.enum(['put', 'delete']),
  httpStatus: z.number().int().nullable(),
  /** The server's message (its OperationOutcome's text) or why the change was never sent. */
  message: z.string(),
  createdAt: isoTime,
  status: z.enum(['open', 'discarded', 'requeued']),
});
export type SyncDeadLetterView = z.infer<typeof syncDeadLetterSchema>;

export const syncServerPassSchema = z.object({
  server: z.string(),
  state: z.enum(['drained', 'waiting', 'retrying', 'failed']),
  sent: z.number().int(),
  adopted: z.number().int(),
  unchanged: z.number().int(),
  conflicts: z.number().int(),
  deadLetters: z.number().int(),
  requests: z.number().int(),
  error: z.string().nullable(),
  nextAttemptAt: isoTime.nullable(),
});

const empty = z.strictObject({});
/** An optional note with an admission, transfer or discharge (why, from where, to where). */
const adtNoteSchema = z.string().trim().max(300, 'at most 300 characters');

// ---------------------------------------------------------------------------------------------
// Scheduling (src/main/crm/)
// ---------------------------------------------------------------------------------------------

const instantSchema = z.string().datetime({ offset: true, message: 'not an ISO 8601 date-time with a time zone (e.g. 2026-12-03T09:00:00Z)' });
const localDateSchema = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD');
const wallTimeSchema = z.string().regex(/^\d{2}:\d{2}$/, 'a time as HH:MM');
const scheduleNoteSchema = z.string().trim().max(500, 'at most 500 characters');
export const resourceKindSchema = z.enum(['practitioner', 'room', 'device']);
export type ResourceKind = z.infer<typeof resourceKindSchema>;
export const availabilityTemplateSchema = z.object({
  id: idSchema,
  /** RFC 5545 RRULE over local days, e.g. FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR. */
  rrule: z.string().min(1).max(500),
  startTime: wallTimeSchema,
  endTime: wallTimeSchema,
  validFrom: localDateSchema,
  validUntil: localDateSchema.nullable(),
});
export const scheduleBlockSchema = z.object({ id: idSchema, kind: z.enum(['block', 'holiday']), start: isoTime, end: isoTime, reason: z.string() });
export const scheduleResourceSchema = z.object({
  id: idSchema,
  kind: resourceKindSchema,
  name: z.string(),
  /** A practitioner's role (PractitionerRole), e.g. "Neuroradiologist"; null for rooms and devices. */
  role: z.string().nullable(),
  active: z.boolean(),
  /** IANA zone the opening hours are wall-clock times in. */
  timeZone: z.string(),
  slotMinutes: z.number().int(),
  bufferMinutes: z.number().int(),
  availability: z.array(availabilityTemplateSchema),
  /** Blocks and holidays not over yet. */
  blocks: z.array(scheduleBlockSchema),
});
export type ScheduleResource = z.infer<typeof scheduleResourceSchema>;
export const APPOINTMENT_STATUSES = ['proposed', 'pending', 'booked', 'arrived', 'checked-in', 'fulfilled', 'cancelled', 'noshow', 'entered-in-error', 'waitlist'] as const;
export const appointmentStatusSchema = z.enum(APPOINTMENT_STATUSES);
export type AppointmentStatus = z.infer<typeof appointmentStatusSchema>;
export const appointmentViewSchema = z.object({
  id: idSchema,
  patientId: idSchema,
  mrn: z.string(),
  /** null: a restricted patient, without break-glass. */
  patientName: z.string().nullable(),
  status: appointmentStatusSchema,
  start: isoTime.nullable(),
  end: isoTime.nullable(),
  service: z.string(),
  note: z.string().nullable(),
  resourceIds: z.array(idSchema),
  /** Booked over another booking or outside hours on purpose (an emergency), with why. */
  overbookedReason: z.string().nullable(),
  /** The appointment this one replaced when it was rescheduled. */
  rescheduledFrom: idSchema.nullable(),
  version: z.number().int(),
  createdAt: isoTime,
  createdBy: z.string(),
  history: z.array(z.object({ at: isoTime, by: z.string(), status: appointmentStatusSchema, start: isoTime.nullable(), end: isoTime.nullable(), note: z.string().nullable() })),
});
export type AppointmentView = z.infer<typeof appointmentViewSchema>;
export const slotSchema = z.object({ start: isoTime, end: isoTime, resourceIds: z.array(idSchema) });
export type FreeSlot = z.infer<typeof slotSchema>;
export const contactChannelSchema = z.enum(['email', 'sms', 'letter']);
export const patientContactSchema = z.object({ channel: contactChannelSchema, address: z.string(), consent: z.boolean(), recordedAt: isoTime, recordedBy: z.string() });
export type PatientContactView = z.infer<typeof patientContactSchema>;
export const reminderViewSchema = z.object({
  id: idSchema,
  appointmentId: idSchema,
  patientId: idSchema,
  channel: z.enum(['email', 'sms', 'file']),
  address: z.string(),
  dueAt: isoTime,
  status: z.enum(['planned', 'sending', 'sent', 'failed', 'cancelled']),
  attempts: z.number().int(),
  nextAttemptAt: isoTime,
  lastError: z.string().nullable(),
  sentAt: isoTime.nullable(),
});
export type ReminderView = z.infer<typeof reminderViewSchema>;
const overbookSchema = z.strictObject({ reason: z.string().trim().min(10, 'say why (at least 10 characters): an overbooking is audited').max(300) });
const bookingTimeSchema = {
  start: instantSchema,
  end: instantSchema,
  /** Every resource the appointment needs (e.g. the practitioner and the room). */
  resourceIds: z.array(idSchema).min(1, 'name at least one practitioner, room or device').max(5),
  /** The hold this booking confirms (schedule.hold). */
  holdId: idSchema.optional(),
  overbook: overbookSchema.optional(),
};

const newPatientSchema = z.strictObject({
  givenName: displayNameSchema,
  familyName: displayNameSchema,
  birthDate: birthDateSchema,
  sex: sexSchema,
  mrn: z.string().trim().min(1).max(32).regex(/^[A-Za-z0-9-]+$/, 'letters, digits and hyphen only').optional(),
  restricted: z.boolean().default(false),
});
/** A patient registered by the radiologist from a study's DICOM identity (as edited): never restricted. */
const patientFromStudySchema = newPatientSchema.omit({ restricted: true });
/** Exactly one patient decision (see src/main/imaging/patient-match.ts); `override` only with a record. */
function onePatientDecision(r: { patientId?: unknown; createPatient?: unknown; unlinked?: unknown; override?: unknown }, ctx: z.RefinementCtx, required: boolean): void {
  const given = [r.patientId, r.createPatient, r.unlinked].filter((v) => v !== undefined).length;
  if (given > 1) ctx.addIssue({ code: 'custom', message: 'give one of patientId, createPatient or unlinked' });
  if (required && given === 0) ctx.addIssue({ code: 'custom', message: 'give patientId or createPatient' });
  if (r.override !== undefined && r.patientId === undefined && r.createPatient === undefined) ctx.addIssue({ code: 'custom', path: ['override'], message: 'only with patientId or createPatient' });
}
const ok = z.object({ ok: z.literal(true) });

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

export interface ChannelDef<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType> {
  request: Req;
  response: Res;
  permission: ChannelPermission;
  /** Audit action written with every successful call (and every refusal); null: not audited (no data touched). */
  audit: string | null;
  /** False for the few channels that work before the encrypted store is open. */
  needsStore: boolean;
  /** Largest accepted request, in bytes of JSON. */
  maxRequestBytes: number;
  /** Only from a connection that holds this launch's secret (see Connection.launchVerified), e.g. first-run setup. */
  requiresLaunchSecret: boolean;
}

const SMALL = 16 * 1024;

function channel<Req extends z.ZodType, Res extends z.ZodType>(
  def: Omit<ChannelDef<Req, Res>, 'needsStore' | 'maxRequestBytes' | 'requiresLaunchSecret'> & Partial<Pick<ChannelDef, 'needsStore' | 'maxRequestBytes' | 'requiresLaunchSecret'>>,
): ChannelDef<Req, Res> {
  return { needsStore: true, maxRequestBytes: SMALL, requiresLaunchSecret: false, ...def };
}

export const channels = {
  'app.status': channel({ request: empty, response: appStatusSchema, permission: 'public', audit: null, needsStore: false }),
  'store.unlock': channel({
    request: z.strictObject({ passphrase: z.string().min(1, 'required').max(1024) }),
    response: appStatusSchema,
    permission: 'public',
    audit: 'store.unlock',
    needsStore: false,
  }),
  'setup.initialize': channel({
    request: z.strictObject({
      /** Required when the passphrase source is `prompt`; must be absent otherwise. */
      storePassphrase: z.string().min(12, 'at least 12 characters').max(1024).optional(),
      admin: z.strictObject({ username: usernameSchema, displayName: displayNameSchema, password: passwordSchema }),
      demoData: z.boolean(),
    }),
    response: z.object({
      status: appStatusSchema,
      /** Synthetic demo staff and their random passwords, returned this once and never stored in clear. */
      demoAccounts: z.array(z.object({ username: z.string(), role: roleSchema, password: z.string() })),
    }),
    permission: 'public',
    audit: 'setup.initialize',
    needsStore: false,
    requiresLaunchSecret: true,
  }),
  'auth.signIn': channel({
    request: z.strictObject({ username: z.string().trim().min(1, 'required').max(64), password: z.string().min(1, 'required').max(256) }),
    response: sessionInfoSchema,
    permission: 'public',
    audit: 'auth.sign-in',
  }),
  'auth.resume': channel({
    request: z.strictObject({ token: z.string().min(1).max(128) }),
    response: sessionInfoSchema,
    permission: 'public',
    audit: 'auth.resume',
  }),
  'auth.signOut': channel({ request: empty, response: ok, permission: 'session', audit: 'auth.sign-out' }),
  'auth.lock': channel({ request: empty, response: sessionInfoSchema, permission: 'session', audit: 'auth.lock' }),
  'auth.unlock': channel({
    request: z.strictObject({ password: z.string().min(1, 'required').max(256) }),
    response: sessionInfoSchema,
    permission: 'session',
    audit: 'auth.unlock',
  }),
  /** Activity heartbeat from the page: keeps the idle auto-lock from firing while someone works. */
  'auth.touch': channel({ request: empty, response: ok, permission: 'active-session', audit: null }),
  'auth.changePassword': channel({
    request: z.strictObject({ currentPassword: z.string().min(1).max(256), newPassword: passwordSchema }),
    response: sessionInfoSchema,
    permission: 'active-session',
    audit: 'auth.change-password',
  }),
  'auth.breakGlass': channel({
    request: z.strictObject({
      reason: z.string().trim().min(15, 'say why in at least 15 characters').max(500),
      minutes: z.number().int().min(5).max(60),
    }),
    response: sessionInfoSchema,
    permission: 'breakglass:invoke',
    audit: 'auth.break-glass',
  }),
  'auth.endBreakGlass': channel({ request: empty, response: sessionInfoSchema, permission: 'active-session', audit: 'auth.break-glass-end' }),

  'system.connectivity': channel({ request: empty, response: connectivitySchema, permission: 'active-session', audit: null }),

  'patients.list': channel({
    request: z.strictObject({ query: z.string().trim().max(100).optional(), limit: z.number().int().min(1).max(500).default(100) }),
    response: z.object({ patients: z.array(patientSummarySchema) }),
    permission: 'patients:read',
    audit: 'patient.search',
  }),
  'patients.get': channel({
    request: z.strictObject({ id: idSchema }),
    response: patientSchema,
    permission: 'patients:read',
    audit: 'patient.read',
  }),
  'patients.create': channel({
    request: newPatientSchema,
    response: patientSchema,
    permission: 'patients:write',
    audit: 'patient.create',
  }),

  'users.list': channel({ request: empty, response: z.object({ users: z.array(userSchema) }), permission: 'users:manage', audit: 'user.list' }),
  'users.create': channel({
    request: z.strictObject({ username: usernameSchema, displayName: displayNameSchema, role: roleSchema, password: passwordSchema }),
    response: userSchema,
    permission: 'users:manage',
    audit: 'user.create',
  }),
  'users.update': channel({
    request: z.strictObject({ id: idSchema, displayName: displayNameSchema.optional(), role: roleSchema.optional(), disabled: z.boolean().optional() }),
    response: userSchema,
    permission: 'users:manage',
    audit: 'user.update',
  }),
  'users.resetPassword': channel({
    request: z.strictObject({ id: idSchema, password: passwordSchema }),
    response: userSchema,
    permission: 'users:manage',
    audit: 'user.reset-password',
  }),
  'users.unlock': channel({ request: z.strictObject({ id: idSchema }), response: userSchema, permission: 'users:manage', audit: 'user.unlock' }),

  'audit.list': channel({
    request: z.strictObject({
      beforeSeq: z.number().int().positive().optional(),
      limit: z.number().int().min(1).max(500).default(100),
      action: z.string().max(64).optional(),
      outcome: z.enum(['success', 'denied', 'error']).optional(),
    }),
    response: z.object({ entries: z.array(auditEntrySchema), total: z.number().int() }),
    permission: 'audit:read',
    audit: 'audit.read',
  }),
  'audit.verify': channel({ request: empty, response: auditVerifyResultSchema, permission: 'audit:read', audit: 'audit.verify' }),

  /** Folders on this workstation a radiologist may import from (the configured import roots). */
  'imaging.browse': channel({
    request: z.strictObject({ path: pathSchema.optional() }),
    response: z.object({
      path: z.string().nullable(),
      parent: z.string().nullable(),
      roots: z.array(z.string()),
      entries: z.array(z.object({ name: z.string(), path: z.string(), kind: z.enum(['dir', 'file']), size: z.number() })),
    }),
    permission: 'imaging:write',
    audit: null,
  }),
  'imaging.scan': channel({
    request: z.strictObject({ path: pathSchema }),
    response: z.object({
      series: z.array(seriesSummaryViewSchema),
      /** `problem`: why the file cannot be imported (not NIfTI-1, not 4-D, …); null when it can. */
      nifti: z.array(z.object({ file: z.string(), bval: z.string().nullable(), bvec: z.string().nullable(), problem: z.string().nullable() })),
    }),
    permission: 'imaging:write',
    audit: 'imaging.scan',
  }),
  'imaging.import': channel({
    request: z.strictObject({
      path: pathSchema,
      seriesInstanceUid: z.string().max(64).optional(),
      bval: pathSchema.optional(),
      bvec: pathSchema.optional(),
      mask: z.boolean().default(true),
      /** The patient the radiologist confirmed. */
      patientId: idSchema.optional(),
      /** Register the patient from the DICOM identity (as edited), in the transaction of the study (patients:create-from-study). */
      createPatient: patientFromStudySchema.optional(),
      /** No patient: the study is flagged until linked (imaging.linkPatient). */
      unlinked: z.literal(true).optional(),
      /** Why the study goes to a record that differs from the DICOM identity. */
      override: overrideSchema.optional(),
    }).superRefine((r, ctx) => onePatientDecision(r, ctx, false)),
    response: imagingJobSchema,
    permission: 'imaging:write',
    audit: 'imaging.import-start',
  }),
  'imaging.jobs': channel({ request: empty, response: z.object({ jobs: z.array(imagingJobSchema) }), permission: 'imaging:write', audit: null }),
  'imaging.studies': channel({
    /** `patientId`: that patient's studies only (the record's imaging section). */
    request: z.strictObject({ patientId: idSchema.optional() }),
    /** `restrictedHidden`: studies of restricted patients left out because no break-glass grant is active. */
    response: z.object({ studies: z.array(studySchema), restrictedHidden: z.number().int() }),
    permission: 'imaging:read',
    audit: 'imaging.list',
  }),
  /** Links a study imported without a patient to one (an existing record, or one registered from its DICOM identity). */
  'imaging.linkPatient': channel({
    request: z
      .strictObject({ studyId: idSchema, patientId: idSchema.optional(), createPatient: patientFromStudySchema.optional(), override: overrideSchema.optional() })
      .superRefine((r, ctx) => onePatientDecision(r, ctx, true)),
    response: studySchema,
    permission: 'imaging:write',
    audit: 'imaging.link-patient',
  }),
  'imaging.volume': channel({
    request: z.strictObject({
      studyId: idSchema,
      volume: z.union([z.enum(MAP_KINDS), z.strictObject({ dwi: z.number().int().min(0).max(4095) }), z.strictObject({ aiRead: idSchema, map: z.enum(AI_MAP_KINDS) })]),
    }),
    response: volumeDataSchema,
    permission: 'imaging:read',
    audit: 'imaging.read',
  }),

  /**
   * The alarm log of ONE bed (its alarms and the ward-wide ones) or ONE patient (across beds; by the
   * monitor's reference `Patient/<id>` | `mrn:<MRN>`, or by record id): every raise, update,
   * escalation, acknowledgement, pause and clearing of the last `hours`, oldest first. A restricted
   * patient's log needs break-glass.
   */
  'alarms.log': channel({
    request: z
      .strictObject({
        bedKey: z.string().regex(/^[A-Za-z0-9_-]{1,32}\/[A-Za-z0-9_-]{1,32}$/, 'a bed as <ward>/<bed>').optional(),
        patientRef: z.string().regex(/^(Patient\/[0-9a-f-]{36}|mrn:[A-Za-z0-9-]{1,32})$/, 'Patient/<id> or mrn:<MRN>').optional(),
        patientId: idSchema.optional(),
        hours: z.number().int().min(1).max(168).default(24),
      })
      .refine((r) => [r.bedKey, r.patientRef, r.patientId].filter((v) => v !== undefined).length === 1, { message: 'name exactly one of bedKey, patientRef or patientId' }),
    response: z.object({
      bedKey: z.string().nullable(),
      /** The patient's references the log was read for (the record's `Patient/<id>` and `mrn:<MRN>` when it is known here). */
      patientRefs: z.array(z.string()),
      since: isoTime,
      events: z.array(
        z.object({
          id: z.number().int(),
          alarmId: z.string(),
          /** null: ward-wide (monitoring lost). */
          bedKey: z.string().nullable(),
          /** The patient in the bed at the time. */
          patientRef: z.string().nullable(),
          kind: z.enum(['physiological', 'technical']),
          condition: z.string(),
          priority: z.enum(['high', 'medium', 'low']),
          event: z.enum(['raised', 'updated', 'escalated', 'acknowledged', 'paused', 'cleared']),
          /** updated: priority-raised | latched | recurred | pause-expired; cleared: resolved | acknowledged | bed-removed; escalated: to whom. */
          detail: z.string().nullable(),
          escalationLevel: z.number().int(),
          at: isoTime,
          /** Who acknowledged or paused, and why. */
          by: z.string().nullable(),
          reason: z.string().nullable(),
          pausedUntil: isoTime.nullable(),
          message: z.string(),
          /** The bed's NEWS2 aggregate at that moment. */
          news2: z.number().int().nullable(),
        }),
      ),
      /** More events than one answer holds: the oldest were left out. */
      truncated: z.boolean(),
    }),
    permission: 'vitals:read',
    audit: 'alarm.log-read',
  }),
  /**
   * Scheduling (src/main/crm/). Bookable resources (practitioners, rooms, devices), each with a time
   * zone, a slot grid, a buffer, recurring availability templates (RRULE) and blocks; free-slot search
   * across several of them; a short hold while the receptionist confirms; booking, rescheduling and the
   * appointment's status. No practitioner, room, device or patient is ever double-booked: each booking
   * checks and writes in one transaction that holds the store's write lock (crm/booking.ts), unless it
   * is an explicit, audited overbooking. Every change puts the FHIR Appointment in the outbox.
   */
  'schedule.resources': channel({
    request: z.strictObject({ includeInactive: z.boolean().optional() }),
    response: z.object({ resources: z.array(scheduleResourceSchema) }),
    permission: 'schedule:read',
    audit: 'schedule.read',
  }),
  'schedule.createResource': channel({
    request: z.strictObject({
      kind: resourceKindSchema,
      name: z.string().trim().min(2, 'at least 2 characters').max(120),
      role: z.string().trim().max(120).optional(),
      timeZone: z.string().min(1).max(64),
      slotMinutes: z.number().int().min(5).max(240),
      bufferMinutes: z.number().int().min(0).max(120).optional(),
    }),
    response: scheduleResourceSchema,
    permission: 'schedule:write',
    audit: 'schedule.resource-create',
  }),
  'schedule.addAvailability': channel({
    request: z.strictObject({ resourceId: idSchema, rrule: z.string().trim().min(1).max(500), startTime: wallTimeSchema, endTime: wallTimeSchema, validFrom: localDateSchema, validUntil: localDateSchema.optional() }),
    response: scheduleResourceSchema,
    permission: 'schedule:write',
    audit: 'schedule.availability-add',
  }),
  'schedule.addBlock': channel({
    request: z.strictObject({ resourceId: idSchema, kind: z.enum(['block', 'holiday']), start: instantSchema, end: instantSchema, reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(300) }),
    response: scheduleResourceSchema,
    permission: 'schedule:write',
    audit: 'schedule.block-add',
  }),
  /**
   * Free times of `durationMinutes` between `from` and `to` (at most 93 days) on the slot grid of the
   * first group's resources: each group is a set of alternatives (e.g. any of two neuroradiologists,
   * and the MRI scanner); a slot names one free resource of each group. With `patientId`, the
   * patient's own appointments are kept clear too.
   */
  'schedule.findSlots': channel({
    request: z.strictObject({
      resources: z.array(z.array(idSchema).min(1).max(50)).min(1).max(5),
      durationMinutes: z.number().int().min(5).max(480),
      from: instantSchema,
      to: instantSchema,
      patientId: idSchema.optional(),
      limit: z.number().int().min(1).max(500).optional(),
    }),
    response: z.object({ slots: z.array(slotSchema), truncated: z.boolean() }),
    permission: 'schedule:read',
    audit: 'schedule.find-slots',
  }),
  /** Holds a free time for HOLD_SECONDS while the receptionist confirms; others cannot book it meanwhile. */
  'schedule.hold': channel({
    request: z.strictObject({ patientId: idSchema, start: instantSchema, end: instantSchema, resourceIds: bookingTimeSchema.resourceIds }),
    response: z.object({ holdId: idSchema, expiresAt: isoTime }),
    permission: 'schedule:write',
    audit: 'schedule.hold',
  }),
  'schedule.book': channel({
    request: z.strictObject({ patientId: idSchema, service: z.string().trim().min(2).max(120), note: scheduleNoteSchema.optional(), ...bookingTimeSchema }),
    response: appointmentViewSchema,
    permission: 'schedule:write',
    audit: 'schedule.book',
  }),
  /** Moves a booking: the old appointment is cancelled ("rescheduled"), the new one remembers it. `version`: the one the caller saw. */
  'schedule.reschedule': channel({
    request: z.strictObject({ appointmentId: idSchema, version: z.number().int(), ...bookingTimeSchema, resourceIds: bookingTimeSchema.resourceIds.optional() }),
    response: z.object({ from: appointmentViewSchema, to: appointmentViewSchema }),
    permission: 'schedule:write',
    audit: 'schedule.reschedule',
  }),
  'schedule.setStatus': channel({
    request: z.strictObject({
      appointmentId: idSchema,
      version: z.number().int(),
      status: z.enum(['pending', 'booked', 'arrived', 'checked-in', 'fulfilled', 'cancelled', 'noshow', 'entered-in-error']),
      note: scheduleNoteSchema.optional(),
    }),
    response: appointmentViewSchema,
    permission: 'schedule:write',
    audit: 'schedule.status',
  }),
  /** Appointments starting in [from, to) (at most 93 days), of one resource or one patient, or all. With `patientId`: the no-show and late-cancellation counts. */
  'schedule.appointments': channel({
    request: z.strictObject({ from: instantSchema, to: instantSchema, resourceId: idSchema.optional(), patientId: idSchema.optional() }),
    response: z.object({ appointments: z.array(appointmentViewSchema), patientCounts: z.object({ noShows: z.number().int(), lateCancellations: z.number().int() }).nullable() }),
    permission: 'schedule:read',
    audit: 'schedule.read',
  }),
  /** A patient's contact on one channel and their consent to be contacted on it (reminders go only where they consented). */
  'patients.setContact': channel({
    request: z.strictObject({ patientId: idSchema, channel: contactChannelSchema, address: z.string().trim().min(1).max(500), consent: z.boolean() }),
    response: patientContactSchema,
    permission: 'patients:write',
    audit: 'patient.contact-set',
  }),
  'patients.contacts': channel({
    request: z.strictObject({ patientId: idSchema }),
    response: z.object({ contacts: z.array(patientContactSchema) }),
    permission: 'patients:read',
    audit: 'patient.read',
  }),
  /** The reminders queue: planned, sent, failed (with why) and cancelled reminders, by due time. */
  'schedule.reminders': channel({
    request: z.strictObject({ status: reminderViewSchema.shape.status.optional(), appointmentId: idSchema.optional() }),
    response: z.object({ reminders: z.array(reminderViewSchema) }),
    permission: 'schedule:read',
    audit: 'schedule.read',
  }),
  /**
   * ADT (src/main/adt/): admit a patient to a bed, transfer them to another, discharge them; nurses and
   * physicians. Each in one transaction with its audit entry and the FHIR Encounter (and the bed's
   * Location) in the outbox. From the admission on, the bed's readings are the patient's. At most one
   * open stay per bed and per patient: anything else is a conflict, and nothing is written.
   * `admissionId`: the stay the caller saw; refused (conflict) when it is no longer the patient's current one.
   */
  'adt.admit': channel({
    request: z.strictObject({ patientId: idSchema, bedKey: bedKeySchema, reason: adtNoteSchema.optional() }),
    response: admissionViewSchema,
    permission: 'adt:write',
    audit: 'adt.admit',
  }),
  'adt.transfer': channel({
    request: z.strictObject({ patientId: idSchema, toBedKey: bedKeySchema, admissionId: idSchema.optional(), reason: adtNoteSchema.optional() }),
    /** The stay that ended and the one that began. */
    response: z.object({ from: admissionViewSchema, to: admissionViewSchema }),
    permission: 'adt:write',
    audit: 'adt.transfer',
  }),
  'adt.discharge': channel({
    request: z.strictObject({ patientId: idSchema, admissionId: idSchema.optional(), reason: adtNoteSchema.optional() }),
    response: admissionViewSchema,
    permission: 'adt:write',
    audit: 'adt.discharge',
  }),
  /** Who is in which bed now: one ward, or every ward. Names as on the board. */
  'adt.current': channel({
    request: z.strictObject({ ward: topicSegmentSchema.optional() }),
    response: z.object({ admissions: z.array(admissionViewSchema) }),
    permission: 'vitals:read',
    audit: 'adt.list',
  }),
  /** A patient's stays in beds, newest first (the patient's record; a restricted one needs break-glass). */
  'adt.history': channel({
    request: z.strictObject({ patientId: idSchema }),
    response: z.object({ patientId: idSchema, current: admissionViewSchema.nullable(), admissions: z.array(admissionViewSchema) }),
    permission: 'vitals:read',
    audit: 'adt.read',
  }),
  /**
   * A patient's vitals of the last `hours`, across beds: one point per bed and minute (the minute's latest
   * reading) with its NEWS2 on the patient's scale. `conflicts`: readings of that minute whose monitor
   * named someone else. A restricted patient's needs break-glass.
   */
  'patients.vitals': channel({
    request: z.strictObject({ patientId: idSchema, hours: z.number().int().min(1).max(72).default(6) }),
    response: z.object({
      patientId: idSchema,
      patientRefs: z.array(z.string()),
      since: isoTime,
      minutes: z.array(vitalsSchema.extend({ minute: z.string(), bedKey: z.string(), news2: z.number().int().nullable(), readings: z.number().int(), conflicts: z.number().int() })),
      truncated: z.boolean(),
    }),
    permission: 'vitals:read',
    audit: 'vitals.read',
  }),
  'ward.board': channel({ request: empty, response: wardBoardSchema, permission: 'vitals:read', audit: 'vitals.read' }),
  'ward.bedHistory': channel({
    request: z.strictObject({ bedKey: z.string().max(70), minutes: z.number().int().min(1).max(1440).default(60) }),
    response: z.object({ bedKey: z.string(), readings: z.array(vitalsSchema.extend({ news2: z.number().int().nullable() })) }),
    permission: 'vitals:read',
    audit: 'vitals.read',
  }),
  /** Sets the NEWS2 SpO2 scale of the patient now in the bed (it follows the patient to other beds). */
  'ward.setSpo2Scale': channel({
    request: z.strictObject({ bedKey: z.string().max(70), scale: spo2ScaleSchema, reason: z.string().trim().min(3, 'say why in a few words').max(300) }),
    response: bedViewSchema,
    permission: 'vitals:configure',
    audit: 'vitals.spo2-scale',
  }),
  'alarms.acknowledge': channel({
    request: z.strictObject({ alarmId: z.string().max(200), reason: z.string().trim().min(3, 'say why in a few words').max(300) }),
    response: alarmViewSchema,
    permission: 'alarms:acknowledge',
    audit: 'alarm.acknowledge',
  }),
  'alarms.pause': channel({
    request: z.strictObject({ alarmId: z.string().max(200), reason: z.string().trim().min(3, 'say why in a few words').max(300), seconds: z.number().int().min(10).max(120) }),
    response: alarmViewSchema,
    permission: 'alarms:acknowledge',
    audit: 'alarm.pause',
  }),

  /** Bedside monitor credentials for the embedded MQTT broker (administrator; see README "Ward monitoring"). */
  'monitors.list': channel({
    request: empty,
    response: z.object({ monitors: z.array(monitorCredentialSchema), embedded: z.boolean() }),
    permission: 'users:manage',
    audit: 'monitor.list',
  }),
  /** One credential per bed, each bound to that bed's topic; the passwords are in the answer and nowhere else. */
  'monitors.create': channel({
    request: z.strictObject({
      ward: topicSegmentSchema,
      beds: z
        .array(topicSegmentSchema)
        .min(1, 'at least one bed')
        .max(1000, 'at most 1000 beds at a time')
        .refine((beds) => new Set(beds).size === beds.length, 'each bed once'),
      label: z.string().trim().max(120).optional(),
    }),
    response: z.object({ monitors: z.array(monitorCredentialSchema), credentials: monitorCredentialsFileSchema }),
    permission: 'users:manage',
    audit: 'monitor.create',
    maxRequestBytes: 64 * 1024,
  }),
  /** Refuses the credential from now on and closes the monitor's connections. */
  'monitors.revoke': channel({
    request: z.strictObject({ id: idSchema }),
    response: monitorCredentialSchema,
    permission: 'users:manage',
    audit: 'monitor.revoke',
  }),

  /**
   * Edits a record's demographics; `version` is the one the editor saw (an edit made meanwhile is a
   * conflict, not overwritten). The FHIR Patient goes to the outbox in the same transaction.
   */
  'patients.update': channel({
    request: z.strictObject({
      id: idSchema,
      version: z.number().int().min(1),
      givenName: displayNameSchema.optional(),
      familyName: displayNameSchema.optional(),
      birthDate: birthDateSchema.optional(),
      sex: sexSchema.optional(),
    }),
    response: patientSchema,
    permission: 'patients:write',
    audit: 'patient.update',
  }),

  // FHIR sync (src/main/fhir/sync/). Status holds no patient data and is polled: not audited. Reading
  // conflicts shows records' content: audited. Every action is audited with the conflict / letter id.
  'sync.status': channel({ request: empty, response: syncStatusSchema, permission: 'sync:read', audit: null }),
  /** One pass now for every server, ignoring their retry times. */
  'sync.runNow': channel({
    request: empty,
    response: z.object({ servers: z.array(syncServerPassSchema), retired: z.number().int() }),
    permission: 'sync:manage',
    audit: 'sync.run',
  }),
  'sync.conflicts': channel({
    request: z.strictObject({ status: z.enum(['open', 'kept-mine', 'took-theirs']).optional(), server: z.string().max(64).optional() }),
    response: z.object({ conflicts: z.array(syncConflictSchema) }),
    permission: 'sync:read',
    audit: 'sync.conflict.list',
  }),
  'sync.resolveConflict': channel({
    request: z
      .strictObject({
        id: z.number().int().min(1),
        choice: z.enum(['keep-mine', 'take-theirs', 'merge']),
        /** merge: per top-level element that differs, which side it takes. */
        fields: z.record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,63}$/, 'a FHIR element name'), z.enum(['mine', 'theirs'])).optional(),
      })
      .refine((r) => r.choice === 'merge' || r.fields === undefined, { message: 'fields only with choice merge', path: ['fields'] }),
    response: z.object({
      status: z.enum(['resolved', 'conflict-again', 'refused']),
      conflict: syncConflictSchema,
      /** What happened to the local record (take-theirs, merge), in words; null for keep-mine. */
      local: z.object({ applied: z.boolean(), message: z.string() }).nullable(),
      message: z.string(),
    }),
    permission: 'sync:manage',
    audit: 'sync.conflict.resolve',
    maxRequestBytes: 32 * 1024,
  }),
  'sync.deadLetters': channel({
    request: z.strictObject({ status: z.enum(['open', 'discarded', 'requeued']).optional(), server: z.string().max(64).optional() }),
    response: z.object({ deadLetters: z.array(syncDeadLetterSchema) }),
    permission: 'sync:read',
    audit: 'sync.dead-letter.list',
  }),
  'sync.discardDeadLetter': channel({ request: z.strictObject({ id: z.number().int().min(1) }), response: syncDeadLetterSchema, permission: 'sync:manage', audit: 'sync.dead-letter.discard' }),
  /** Queues the change again (a new outbox row); servers that hold it already skip it. */
  'sync.requeueDeadLetter': channel({ request: z.strictObject({ id: z.number().int().min(1) }), response: syncDeadLetterSchema, permission: 'sync:manage', audit: 'sync.dead-letter.requeue' }),

  /**
   * The AI second read (issue 9): run one on a stored study (a background job; progress as
   * `analysis.job` events to this window), cancel it, list a study's reads with the model's state, show
   * a read's FHIR report as queued, and the radiologist's decision. Nothing is final without a person.
   */
  'analysis.run': channel({ request: z.strictObject({ studyId: idSchema }), response: aiReadJobSchema, permission: 'imaging:write', audit: 'analysis.start' }),
  'analysis.cancel': channel({ request: z.strictObject({ jobId: z.string().uuid() }), response: aiReadJobSchema, permission: 'imaging:write', audit: 'analysis.cancel' }),
  'analysis.jobs': channel({ request: empty, response: z.object({ jobs: z.array(aiReadJobSchema) }), permission: 'imaging:write', audit: null }),
  'analysis.reads': channel({
    request: z.strictObject({ studyId: idSchema }),
    response: z.object({
      reads: z.array(aiReadSchema),
      /** The model a new read would use: its identity, or why it cannot be used (missing, corrupt). */
      model: z.object({ name: z.string().nullable(), version: z.string().nullable(), hash: z.string().nullable(), error: z.string().nullable() }),
    }),
    permission: 'imaging:read',
    audit: 'analysis.list',
  }),
  /** The FHIR resources of a read's report as they were last queued (DiagnosticReport first). */
  'analysis.report': channel({
    request: z.strictObject({ readId: idSchema }),
    response: z.object({ resources: z.array(z.record(z.string(), z.unknown())) }),
    permission: 'imaging:read',
    audit: 'analysis.report-read',
  }),
  'analysis.decide': channel({
    request: z
      .strictObject({
        readId: idSchema,
        decision: z.enum(['confirm', 'amend', 'reject']),
        comment: z.string().trim().min(3, 'say why in at least 3 characters').max(2000),
        /** Amend: the radiologist's own conclusion and finding. */
        conclusion: z.string().trim().min(3).max(4000).optional(),
        finding: z.enum(['suspected', 'not-found']).optional(),
      })
      .refine((r) => (r.decision === 'amend') === (r.conclusion !== undefined && r.finding !== undefined), { message: 'an amendment names the conclusion and the finding (and only an amendment does)' }),
    response: aiReadSchema,
    permission: 'imaging:write',
    audit: 'analysis.decide',
  }),

  /** The in-app inbox of the caller's role (e.g. physicians: confirmed suspected lesions). */
  'notifications.list': channel({
    request: z.strictObject({ limit: z.number().int().min(1).max(200).default(50) }),
    response: z.object({ notifications: z.array(notificationSchema), unread: z.number().int() }),
    permission: 'patients:read',
    audit: 'notification.list',
  }),
  'notifications.markRead': channel({ request: z.strictObject({ id: idSchema }), response: notificationSchema, permission: 'patients:read', audit: 'notification.read' }),
} as const satisfies Record<string, ChannelDef>;

export type Channels = typeof channels;
export type ChannelName = keyof Channels;
export const CHANNEL_NAMES = Object.keys(channels) as ChannelName[];
/** What a caller sends (defaults not yet applied). */
export type RequestOf<C extends ChannelName> = z.input<Channels[C]['request']>;
/** What a handler receives (after parsing: defaults applied, strings trimmed). */
export type ParsedRequestOf<C extends ChannelName> = z.output<Channels[C]['request']>;
export type ResponseOf<C extends ChannelName> = z.output<Channels[C]['response']>;

export function isChannelName(name: unknown): name is ChannelName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(channels, name);
}

// ---------------------------------------------------------------------------------------------
// Events pushed from the main process to one window / WebSocket
// ---------------------------------------------------------------------------------------------

export const events = {
  /** The session of this window changed without the window asking (idle lock, expiry, break-glass end). */
  'session.changed': z.object({ session: sessionInfoSchema.nullable(), reason: z.string() }),
  'connectivity.changed': connectivitySchema,
  /** Progress and outcome of an import started from this window. */
  'imaging.job': imagingJobSchema,
  /** Progress and outcome of an AI read started from this window. */
  'analysis.job': aiReadJobSchema,
  /** A notification for the signed-in role arrived (the inbox re-reads its list). */
  'notifications.changed': z.object({ unread: z.number().int() }),
  /** At most once a second: beds that changed and, when they changed, all active alarms. */
  'ward.update': z.object({ beds: z.array(bedUpdateSchema), alarms: z.array(alarmViewSchema).nullable(), link: wardBoardSchema.shape.link, counters: wardBoardSchema.shape.counters }),
} as const;
export type EventName = keyof typeof events;
export type EventPayload<E extends EventName> = z.output<(typeof events)[E]>;
export const EVENT_NAMES = Object.keys(events) as EventName[];
