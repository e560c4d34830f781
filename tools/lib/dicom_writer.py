"""Writing a DICOM file from pixels with DCMTK's dump2dcm: the test fixtures and the export-agreement study make
hospital-style files from images this way."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

# Digital X-Ray Image Storage - For Presentation.
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def dump_to_dicom(out: Path, name: str, pixels: np.ndarray, attributes: dict[str, str]) -> Path:
    """dump2dcm from a text dump; `pixels` (frames, rows, columns[, samples]) go in as raw little-endian words."""
    frames, rows, columns = pixels.shape[:3]
    samples = pixels.shape[3] if pixels.ndim == 4 else 1
    raw = out / f"{name}.raw"
    little = pixels.astype(pixels.dtype.newbyteorder("<"))
    raw.write_bytes(little.tobytes())
    bits = pixels.dtype.itemsize * 8
    lines = {
        "(0002,0002)": f"UI [{DX_PRESENTATION}]",
        "(0002,0010)": "UI =LittleEndianExplicit",
        "(0008,0016)": f"UI [{DX_PRESENTATION}]",
        "(0008,0060)": "CS [DX]",
        "(0028,0002)": f"US {samples}",
        "(0028,0004)": "CS [MONOCHROME2]" if samples == 1 else "CS [RGB]",
        "(0028,0008)": f"IS [{frames}]",
        "(0028,0010)": f"US {rows}",
        "(0028,0011)": f"US {columns}",
        "(0028,0100)": f"US {bits}",
        "(0028,0101)": f"US {bits}",
        "(0028,0102)": f"US {bits - 1}",
        "(0028,0103)": "US 0",
        **attributes,
        "(7fe0,0010)": f"{'OW' if bits == 16 else 'OB'} ={raw.name}",
    }
    dump = out / f"{name}.dump"
    dump.write_text("".join(f"{tag} {value}\n" for tag, value in sorted(lines.items())))
    path = out / f"{name}.dcm"
    subprocess.run(["dump2dcm", dump.name, path.name], check=True, cwd=out)
    if not path.exists():  # dump2dcm reports some dump errors with exit status 0
        raise RuntimeError(f"dump2dcm did not write {path}")
    dump.unlink()
    raw.unlink()
    return path
