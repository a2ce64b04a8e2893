"""Training: the filtered dataset into encoded, packed rows (`rendering.py`, `data.py`,
`batches.py`), the losses (`losses.py`: SFT, DPO, unlikelihood), the LoRA model
(`lora.py`, `packed_attention.py`), and the loop that runs one stage at a time
(`trainer.py`, `stages.py`), with the frozen reference of the preference stages
(`reference.py`). It may import `generation` (its templates) and everything below it.
"""
