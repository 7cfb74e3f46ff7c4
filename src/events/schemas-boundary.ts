import { z } from 'zod';

/**
 * Attribute shapes of the boundary events (docs/ndjson.md, "The boundary"),
 * merged into sensorAttributeSchemas by schemas.ts. `common` is passed in so
 * every kind shares the header keys exactly.
 */

const u32 = z.number().int().min(0).max(0xffff_ffff);
const s32 = z.number().int().min(-0x8000_0000).max(0x7fff_ffff);
const port = z.number().int().min(0).max(0xffff);
const result = z.number().int();
const octalMode = z.string().regex(/^[0-7]{4,}$/);
const names = (re: RegExp) => z.array(z.string().regex(re));

/** Keys every event may carry: the fields that came from the caller's memory. */
export const userMemoryKey = { 'witness.user_memory': z.array(z.string().min(1)).optional() };

export function boundarySchemas<C extends z.ZodRawShape>(common: C) {
  const withCommon = <S extends z.ZodRawShape>(shape: S) => z.object({ ...common, ...shape }).strict();
  const syscall = { 'witness.syscall': z.string(), 'witness.result': result };
  return {
    'security.kill': withCommon({
      'witness.signal.number': z.number().int().min(0).max(64),
      'witness.signal.name': z.string(),
      'witness.signal.target_pid': s32,
      'witness.signal.target_tid': u32,
      'witness.signal.code': s32,
      'witness.signal.source': z.enum(['generated', 'syscall']),
      'witness.signal.delivery': z.string().nullable(),
      'witness.syscall': z.string().nullable(),
      'witness.result': result,
    }),
    'security.io_uring': withCommon({
      'witness.io_uring.opcode': z.string(),
      'witness.io_uring.sq_thread': z.boolean(),
      'witness.fd': s32,
      'file.path': z.string().optional(),
      'witness.file.old_path': z.string().optional(),
      'witness.link.target': z.string().optional(),
      'witness.io_uring.op_flags': u32.optional(),
      'network.peer.address': z.string().nullable().optional(),
      'network.peer.port': port.optional(),
    }),
    'security.link': withCommon({ ...syscall, 'file.path': z.string(), 'witness.link.target': z.string() }),
    'security.symlink': withCommon({ ...syscall, 'file.path': z.string(), 'witness.link.target': z.string() }),
    'security.chmod': withCommon({
      ...syscall,
      'file.path': z.string(),
      'witness.chmod.mode': octalMode,
      'witness.chmod.mode_after': octalMode.optional(),
      'witness.chmod.special': names(/^(setuid|setgid|sticky)$/),
      'witness.chmod.executable': z.boolean(),
    }),
    'security.memfd': withCommon({ ...syscall, 'witness.memfd.name': z.string(), 'witness.memfd.flags': names(/^(MFD_[A-Z_]+|0x[0-9a-f]+)$/) }),
    'security.module': withCommon({
      ...syscall,
      'file.path': z.string().nullable(),
      'witness.module.params': z.string(),
      'witness.module.size': z.number().int().min(0).nullable(),
    }),
    'security.bpf': withCommon({ ...syscall, 'witness.bpf.cmd': z.string(), 'witness.bpf.prog_type': u32.nullable() }),
    'security.mount': withCommon({ ...syscall, 'witness.mount.source': z.string(), 'file.path': z.string(), 'witness.mount.flags': z.number().int().min(0) }),
    'security.namespace': withCommon({
      ...syscall,
      'witness.namespace.flags': names(/^(CLONE_[A-Z]+|0x[0-9a-f]+)$/),
      'witness.namespace.inode': z.number().int().min(0).optional(),
      'witness.fd': u32.optional(),
    }),
  };
}
