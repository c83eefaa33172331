"""Neuromorphic deployment studies: NIR export (:mod:`.nir_export`), BN folding (:mod:`.fold`), round trip
through an independent NIR consumer (:mod:`.roundtrip`), hardware profiles and the deploy report
(:mod:`.hardware`, :mod:`.report`), weight fake-quantisation (:mod:`.quantize`).

``nir`` / ``nirtorch`` are optional (extra ``deploy``); modules import them when used.
"""
