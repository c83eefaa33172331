"""The spiking student (docs/models.md): spikingjelly neurons behind one factory (:mod:`.neurons`, backend choice in
:mod:`.backend`), the Spiking MetaFormer backbone (:mod:`.metaformer`), the memory-retrieval module (:mod:`.memory`),
the tracker that joins them with a spiking centre head (:mod:`.student`), the NIR-expressible variant
(:mod:`.deployable`), spike-product operator modules the energy counter sees (:mod:`.ops`) and local pretrained
weights (:mod:`.pretrained`)."""
