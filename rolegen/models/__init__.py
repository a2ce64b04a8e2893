"""The model a run uses: resolving and materializing a checkpoint (`checkpoints.py`), the
shapes its config promises against its weights (`shapes.py`), and LoRA adapters after
training (checked, merged, served: `adapters.py`), which generate, train and eval all
need. It imports only the basics.
"""
