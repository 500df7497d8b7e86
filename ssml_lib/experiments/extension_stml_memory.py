"""Beyond the thesis: STML with a cross-batch memory (``stml_xbm``) beside STML on the four pre-trained settings."""
from __future__ import annotations

SETTINGS = ("table1_cub_pretrained", "table3_cars_pretrained", "table5_sop_pretrained", "table7_gldv2")
