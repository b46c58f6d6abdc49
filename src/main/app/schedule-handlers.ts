/**
 * Scheduling (src/main/crm/): resources and their hours ('schedule:write' to change them), free-slot
 * search, holds, booking, rescheduling and the appointment's status; appointment lists. Each runs in
 * the dispatcher's transaction with its audit entry (entity `Appointment` or `ScheduleResource`; the
 * patient named) and its FHIR resource in the outbox; a refused booking (taken, outside hours, in the
 * past) writes nothing but its refusal. A restricted patient's name is shown only under break-glass;
 * asking for one patient's appointments is a read of their record (the patient-access check).
 */
import { NwError } from '../../shared/errors.js';
import type { AppointmentView } from '../../shared/ipc.js';
import { BookingService } from '../crm/booking.js';
import { ContactsRepository } from '../crm/contacts.js';
import type { QuietHours, ReminderService } from '../crm/reminders.js';
import { ScheduleRepository } from '../crm/schedule-repo.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import type { PatientAccess } from '../security/patient-access.js';
import type { Session } from '../security/sessions.js';
import type { StoreService } from '../store/store-service.js';
import { requireSession, type HandlerTable } from './dispatcher.js';

export interface ScheduleHandlerDeps {
  store: StoreService;
  patientAccess: PatientAccess;
  now: () => Date;
  quietHours: QuietHours;
  reminders: ReminderService;
}

type ScheduleChannels =
  | 'schedule.resources'
  | 'schedule.createResource'
  | 'schedule.addAvailability'
  | 'schedule.addBlock'
  | 'schedule.findSlots'
  | 'schedule.hold'
  | 'schedule.book'
  | 'schedule.reschedule'
  | 'schedule.setStatus'
  | 'schedule.appointments'
  | 'schedule.reminders'
  | 'patients.setContact'
  | 'patients.contacts';

export function createScheduleHandlers(deps: ScheduleHandlerDeps): Pick<HandlerTable, ScheduleChannels> {
  const { store, patientAccess, now } = deps;
  const booking = () => new BookingService(store.db, now, deps.quietHours);
  const schedules = () => new ScheduleRepository(store.db, now);
  const actorOf = (session: Session) => ({ userId: session.userId, name: session.displayName });
  const shown = (session: Session, view: AppointmentView): AppointmentView => {
    if (view.patientName === null || patientAccess.canReadRestricted(session)) return view;
    return new PatientsRepository(store.db, now).restrictedById(view.patientId) ? { ...view, patientName: null } : view;
  };

  return {
    'schedule.resources': (req, ctx) => {
      const resources = schedules().list(req.includeInactive ?? false);
      ctx.audit.detail = { resources: resources.length };
      return { resources };
    },

    'schedule.createResource': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'ScheduleResource';
      ctx.audit.detail = { kind: req.kind, name: req.name };
      const resource = schedules().create(req, session.displayName);
      ctx.audit.entityId = resource.id;
      ctx.audit.detail = { kind: resource.kind, name: resource.name, role: resource.role, timeZone: resource.timeZone, slotMinutes: resource.slotMinutes, bufferMinutes: resource.bufferMinutes };
      return resource;
    },

    'schedule.addAvailability': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'ScheduleResource';
      ctx.audit.entityId = req.resourceId;
      const template = { rrule: req.rrule, startTime: req.startTime, endTime: req.endTime, validFrom: req.validFrom, validUntil: req.validUntil ?? null };
      ctx.audit.detail = template;
      return schedules().addAvailability(req.resourceId, template, session.displayName);
    },

    'schedule.addBlock': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'ScheduleResource';
      ctx.audit.entityId = req.resourceId;
      ctx.audit.detail = { kind: req.kind, start: req.start, end: req.end, reason: req.reason };
      return schedules().addBlock(req.resourceId, req, session.displayName);
    },

    'schedule.findSlots': (req, ctx) => {
      const session = requireSession(ctx);
      if (req.patientId) {
        ctx.audit.patientId = req.patientId;
        patientAccess.assertCanRead(session, req.patientId);
      }
      const found = booking().findSlots(req);
      ctx.audit.detail = { resources: req.resources, durationMinutes: req.durationMinutes, from: req.from, to: req.to, slots: found.slots.length };
      return found;
    },

    'schedule.hold': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Appointment';
      ctx.audit.patientId = req.patientId;
      ctx.audit.detail = { start: req.start, end: req.end, resourceIds: req.resourceIds };
      const hold = booking().hold(req, actorOf(session));
      ctx.audit.detail = { ...ctx.audit.detail, holdId: hold.holdId, expiresAt: hold.expiresAt };
      return hold;
    },

    'schedule.book': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Appointment';
      ctx.audit.patientId = req.patientId;
      ctx.audit.detail = { start: req.start, end: req.end, resourceIds: req.resourceIds, service: req.service, holdId: req.holdId ?? null, overbook: req.overbook?.reason ?? null };
      const appointment = booking().book(req, actorOf(session));
      ctx.audit.entityId = appointment.id;
      return shown(session, appointment);
    },

    'schedule.reschedule': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Appointment';
      ctx.audit.entityId = req.appointmentId;
      ctx.audit.patientId = booking().get(req.appointmentId)?.patientId ?? null;
      ctx.audit.detail = { start: req.start, end: req.end, resourceIds: req.resourceIds ?? null, overbook: req.overbook?.reason ?? null };
      const { from, to } = booking().reschedule({ ...req, resourceIds: req.resourceIds ?? [] }, actorOf(session));
      ctx.audit.detail = { ...ctx.audit.detail, from: { start: from.start, end: from.end }, newAppointmentId: to.id };
      return { from: shown(session, from), to: shown(session, to) };
    },

    'schedule.setStatus': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Appointment';
      ctx.audit.entityId = req.appointmentId;
      ctx.audit.patientId = booking().get(req.appointmentId)?.patientId ?? null;
      ctx.audit.detail = { status: req.status, note: req.note ?? null };
      return shown(session, booking().setStatus(req, actorOf(session)));
    },

    'schedule.appointments': (req, ctx) => {
      const session = requireSession(ctx);
      if (req.patientId) {
        ctx.audit.patientId = req.patientId;
        patientAccess.assertCanRead(session, req.patientId);
      }
      const service = booking();
      const appointments = service.appointments(req).map((a) => shown(session, a));
      ctx.audit.detail = { from: req.from, to: req.to, resourceId: req.resourceId ?? null, appointments: appointments.length };
      return { appointments, patientCounts: req.patientId ? service.patientCounts(req.patientId) : null };
    },

    'schedule.reminders': (req, ctx) => {
      const reminders = deps.reminders.list(req);
      ctx.audit.detail = { status: req.status ?? null, appointmentId: req.appointmentId ?? null, reminders: reminders.length };
      return { reminders };
    },

    'patients.setContact': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Patient';
      ctx.audit.entityId = req.patientId;
      ctx.audit.patientId = req.patientId;
      ctx.audit.detail = { channel: req.channel, consent: req.consent };
      patientAccess.assertCanRead(session, req.patientId);
      if (!new PatientsRepository(store.db, now).get(req.patientId)) throw new NwError('not-found', 'No such patient.');
      return new ContactsRepository(store.db, now).set(req.patientId, req, session.displayName);
    },

    'patients.contacts': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Patient';
      ctx.audit.entityId = req.patientId;
      ctx.audit.patientId = req.patientId;
      patientAccess.assertCanRead(session, req.patientId);
      return { contacts: new ContactsRepository(store.db, now).list(req.patientId) };
    },
  };
}
