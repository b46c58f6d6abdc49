#!/usr/bin/python3
"""Write a large synthetic classic (one file per slice per volume) diffusion DICOM series for bench/dicom-load.

Usage: /usr/bin/python3 write-dicom-series.py OUTDIR --size NXxNYxNZ --volumes N [--b0 N] [--vendor siemens|philips]
                                              [--seed N]

Written with pydicom (an independent writer: the reader under test never wrote these files). The images are
a brain-like ellipsoid with a tensor whose orientation turns across the volume, S = S0 exp(-b gᵀDg), plus
Rician noise, so the series fits like a scan (a mask finds the ellipsoid, FA and MD are plausible).
The volumes are b=0 (--b0 of them, spread through the series) and b=1000 along directions on a spiral.

--vendor siemens: the standard tags (0018,9087)/(0018,9089), implicit VR little endian, file names IM00001…
--vendor philips: explicit VR little endian, Philips private b-value (2001,1003), gradient (2005,10b0-b2),
                  rescale slope, (2005,1596) volume number, slice-major instance numbers, as Philips classic
                  exports are.
Deterministic for a given seed.
"""
import argparse
import math
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

MR_STORAGE = '1.2.840.10008.5.1.4.1.1.4'
ROOT = '1.2.826.0.1.3680043.8.498.77.'


def ds_str(v):
    s = '%.8g' % v
    return '0' if s in ('-0', '0') else s


def spiral_directions(n):
    """n unit vectors spread over the sphere (golden-angle spiral on the half sphere)."""
    out = []
    for i in range(n):
        z = 1 - (i + 0.5) / n
        r = math.sqrt(max(0.0, 1 - z * z))
        phi = i * math.pi * (3 - math.sqrt(5))
        out.append((r * math.cos(phi), r * math.sin(phi), z))
    return np.array(out)


def signal(nx, ny, nz, bvals, dirs, rng):
    """Volumes (nv, nz, ny, nx) as uint16."""
    z, y, x = np.meshgrid(np.linspace(-1, 1, nz), np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing='ij')
    r2 = (x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.85) ** 2
    brain = r2 < 1
    s0 = np.where(brain, 900.0 + 300 * np.cos(3 * x) * np.cos(2 * y), 0.0)
    # A fibre direction that turns with position; eigenvalues 1.6/0.35/0.35 e-3 mm²/s (FA ≈ 0.73).
    theta = np.pi * (x + 1) / 2
    e1 = np.stack([np.cos(theta), np.sin(theta), 0.3 * z], -1)
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    l1, l2 = 1.6e-3, 0.35e-3
    out = np.empty((len(bvals), nz, ny, nx), np.uint16)
    sigma = 25.0
    for v, (b, g) in enumerate(zip(bvals, dirs)):
        if b == 0:
            s = s0.copy()
        else:
            cos2 = (e1 @ g) ** 2
            adc = l2 + (l1 - l2) * cos2
            s = s0 * np.exp(-b * adc)
        noisy = np.sqrt((s + rng.normal(0, sigma, s.shape)) ** 2 + rng.normal(0, sigma, s.shape) ** 2)
        out[v] = np.clip(noisy, 0, 65535).astype(np.uint16)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--size', default='96x96x40')
    ap.add_argument('--volumes', type=int, default=33)
    ap.add_argument('--b0', type=int, default=3)
    ap.add_argument('--vendor', choices=['siemens', 'philips'], default='siemens')
    ap.add_argument('--seed', type=int, default=1)
    a = ap.parse_args()
    nx, ny, nz = (int(v) for v in a.size.lower().split('x'))
    nv = a.volumes
    rng = np.random.RandomState(a.seed)
    b0_at = set(int(round(i * nv / a.b0)) for i in range(a.b0)) if a.b0 else set()
    dirs_dw = spiral_directions(nv - len(b0_at))
    bvals, dirs, j = [], [], 0
    for v in range(nv):
        if v in b0_at:
            bvals.append(0.0)
            dirs.append(np.zeros(3))
        else:
            bvals.append(1000.0)
            dirs.append(dirs_dw[j])
            j += 1
    data = signal(nx, ny, nz, bvals, dirs, rng)
    os.makedirs(a.out, exist_ok=True)

    # A slightly oblique axial stack, 2 mm in-plane, 2.5 mm slices.
    ang = math.radians(8)
    row = np.array([1.0, 0, 0])
    col = np.array([0, math.cos(ang), -math.sin(ang)])
    normal = np.cross(row, col)
    spacing, step = 2.0, 2.5
    origin = -0.5 * (nx * spacing * row + ny * spacing * col + nz * step * normal)
    series_uid = ROOT + '%d.1' % a.seed
    philips = a.vendor == 'philips'
    ts = ExplicitVRLittleEndian if philips else ImplicitVRLittleEndian

    template = Dataset()
    template.SpecificCharacterSet = 'ISO_IR 100'
    template.ImageType = ['ORIGINAL', 'PRIMARY', 'DIFFUSION', 'NONE']
    template.SOPClassUID = MR_STORAGE
    template.StudyDate = template.SeriesDate = template.AcquisitionDate = '20260101'
    template.StudyTime = '090000'
    template.Modality = 'MR'
    template.Manufacturer = 'Philips Medical Systems' if philips else 'SIEMENS'
    template.SeriesDescription = template.ProtocolName = 'bench DTI %s' % a.vendor
    template.PatientName = 'Bench^Series'
    template.PatientID = 'BENCH%d' % a.seed
    template.PatientPosition = 'HFS'
    template.MagneticFieldStrength = '3'
    template.EchoTime = '80'
    template.RepetitionTime = '8000'
    template.ScanningSequence = 'EP'
    template.SequenceVariant = 'NONE'
    template.MRAcquisitionType = '2D'
    template.StudyInstanceUID = ROOT + '%d.0' % a.seed
    template.SeriesInstanceUID = series_uid
    template.SeriesNumber = '7'
    template.FrameOfReferenceUID = ROOT + '%d.2' % a.seed
    template.SamplesPerPixel = 1
    template.PhotometricInterpretation = 'MONOCHROME2'
    template.BitsAllocated = 16
    template.BitsStored = 16
    template.HighBit = 15
    template.PixelRepresentation = 0
    template.Rows = ny
    template.Columns = nx
    template.PixelSpacing = [ds_str(spacing), ds_str(spacing)]
    template.SliceThickness = ds_str(step)
    template.SpacingBetweenSlices = ds_str(step)
    template.ImageOrientationPatient = [ds_str(v) for v in list(row) + list(col)]
    template.InPlanePhaseEncodingDirection = 'COL'
    if philips:
        template.RescaleIntercept = '0'
        template.RescaleSlope = '1.25'
        template.RescaleType = 'normalized'

    written = 0
    for v in range(nv):
        for k in range(nz):
            ds = Dataset()
            ds.update(template)
            instance = (k * nv + v + 1) if philips else (v * nz + k + 1)
            ds.SOPInstanceUID = ROOT + '%d.3.%d' % (a.seed, instance)
            ds.InstanceNumber = str(instance)
            ds.AcquisitionTime = '090000.%04d' % v
            pos = origin + k * step * normal
            ds.ImagePositionPatient = [ds_str(c) for c in pos]
            ds.SliceLocation = ds_str(float(np.dot(pos, normal)))
            b, g = bvals[v], dirs[v]
            if philips:
                p1 = ds.private_block(0x2001, 'Philips Imaging DD 001', create=True)
                p1.add_new(0x03, 'FL', b)
                p1.add_new(0x0B, 'CS', 'TRANSVERSAL')  # (2001,100b) slice orientation
                p5 = ds.private_block(0x2005, 'Philips MR Imaging DD 001', create=True)
                p5.add_new(0xB0, 'FL', float(g[0]))
                p5.add_new(0xB1, 'FL', float(g[1]))
                p5.add_new(0xB2, 'FL', float(g[2]))
                # (2005,1596) in the 'DD 006' block: the volume number dcm2niix orders Philips volumes by.
                ds.add_new((0x2005, 0x0014), 'LO', 'Philips MR Imaging DD 005')
                ds.add_new((0x2005, 0x0015), 'LO', 'Philips MR Imaging DD 006')
                ds.add_new((0x2005, 0x1596), 'IS', str(v + 1))
            else:
                ds.add_new((0x0018, 0x9087), 'FD', b)
                if b > 0:
                    ds.add_new((0x0018, 0x9089), 'FD', [float(c) for c in g])
                ds.add_new((0x0018, 0x9075), 'CS', 'DIRECTIONAL' if b > 0 else 'NONE')
            ds.PixelData = data[v, k].astype('<u2').tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MR_STORAGE
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = ts
            meta.ImplementationClassUID = ROOT + '99'
            name = ('IM_%05d' % instance) if philips else ('IM%05d.dcm' % instance)
            path = os.path.join(a.out, name)
            fds = FileDataset(path, ds, file_meta=meta, preamble=b'\0' * 128)
            fds.is_implicit_VR = ts == ImplicitVRLittleEndian
            fds.is_little_endian = True
            fds.save_as(path, write_like_original=False)
            written += 1
    print('%s: %d files, %dx%dx%d, %d volumes (%d b=0), %s' % (a.out, written, nx, ny, nz, nv, len(b0_at), a.vendor))


if __name__ == '__main__':
    sys.exit(main())
