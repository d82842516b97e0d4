"""neuro-erc: SpikEmo spiking ERC toolkit with NIR/Lava export."""
__version__ = "0.1.0"
