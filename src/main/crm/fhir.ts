/**
 * Scheduling records as FHIR R4 resources for the outbox: a practitioner as Practitioner +
 * PractitionerRole, a room as Location, a device as Device, each with its Schedule; an appointment as
 * Appointment with its participants (the patient and every booked resource).
 */
import type { Appointment, Device, Location, Practitioner, PractitionerRole, Schedule } from '@medplum/fhirtypes';
import type { AppointmentView, ResourceKind, ScheduleResource } from '../../shared/ipc.js';

const FHIR_TYPE: Record<ResourceKind, 'Practitioner' | 'Location' | 'Device'> = { practitioner: 'Practitioner', room: 'Location', device: 'Device' };

export function resourceReference(kind: ResourceKind, id: string): string {
  return `${FHIR_TYPE[kind]}/${id}`;
}

type Entry = (Practitioner | PractitionerRole | Location | Device | Schedule) & { id: string };

export function toFhirResourceEntries(resource: ScheduleResource): Entry[] {
  const reference = resourceReference(resource.kind, resource.id);
  const entries: Entry[] = [];
  if (resource.kind === 'practitioner') {
    entries.push({ resourceType: 'Practitioner', id: resource.id, active: resource.active, name: [{ text: resource.name }] });
    entries.push({
      resourceType: 'PractitionerRole',
      id: `role-${resource.id}`,
      active: resource.active,
      practitioner: { reference },
      ...(resource.role ? { code: [{ text: resource.role }] } : {}),
    });
  } else if (resource.kind === 'room') {
    entries.push({
      resourceType: 'Location',
      id: resource.id,
      status: resource.active ? 'active' : 'inactive',
      name: resource.name,
      mode: 'instance',
      physicalType: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'ro', display: 'Room' }] },
    });
  } else {
    entries.push({ resourceType: 'Device', id: resource.id, status: resource.active ? 'active' : 'inactive', deviceName: [{ name: resource.name, type: 'user-friendly-name' }] });
  }
  entries.push({
    resourceType: 'Schedule',
    id: `schedule-${resource.id}`,
    active: resource.active,
    actor: [{ reference, display: resource.name }],
    comment: `Slots of ${resource.slotMinutes} min, ${resource.bufferMinutes} min buffer, hours in ${resource.timeZone}`,
  });
  return entries;
}

export function toFhirAppointment(view: AppointmentView, resources: ReadonlyMap<string, Pick<ScheduleResource, 'kind' | 'name'>>): Appointment & { id: string } {
  return {
    resourceType: 'Appointment',
    id: view.id,
    status: view.status,
    serviceType: [{ text: view.service }],
    ...(view.start ? { start: view.start } : {}),
    ...(view.end ? { end: view.end } : {}),
    ...(view.start && view.end ? { minutesDuration: Math.round((Date.parse(view.end) - Date.parse(view.start)) / 60_000) } : {}),
    created: view.createdAt,
    ...(view.note ? { comment: view.note } : {}),
    ...(view.status === 'cancelled' ? { cancelationReason: { text: view.history.at(-1)?.note ?? 'cancelled' } } : {}),
    participant: [
      { actor: { reference: `Patient/${view.patientId}` }, required: 'required', status: 'accepted' },
      ...view.resourceIds.map((id) => {
        const r = resources.get(id);
        return { actor: { reference: r ? resourceReference(r.kind, id) : `Practitioner/${id}`, ...(r ? { display: r.name } : {}) }, required: 'required' as const, status: 'accepted' as const };
      }),
    ],
  };
}
