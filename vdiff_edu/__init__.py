"""vdiff-edu: build a latent video diffusion model from scratch, piece by piece, on Moving MNIST.

Modules, in the order the notebooks introduce them (data flows one way, top to bottom):

    config, utils, checkpoint   the smoke switch, device, seeding, uint8 pixels, blur, safe atomic saving
    digits                      MNIST files, verified download, synthetic fallback    (notebook 01)
    moving_mnist                bouncing digits: paths, rendering, MovingMNIST        (notebook 01)
    viz                         inline animation, GIFs, filmstrips, sliders           (notebooks 01-02)
    schedule                    NoiseSchedule: betas, alpha_bar, SNR, q_sample        (notebook 02)
    embeddings, blocks          timestep/label embeddings, 3-D residual blocks        (notebook 03)
    attention, unet             spatial/temporal/cross attention, UNet3D              (notebooks 03-04)
    similarity, autoencoder     PSNR/SSIM, the per-frame KL autoencoder               (notebook 05)
    train                       the objective, the Trainer, EMA, checkpoints          (notebook 06)
    sampling                    DDPM, DDIM, DPM-Solver++ and guidance                 (notebook 07)
    pipeline                    LatentVideoPipeline                                   (notebooks 00, 08)
    eval/                       feature networks, metrics, reports, `evaluate`        (notebook 09)
                                (stands apart: it never imports the generator's model code)
"""

__version__ = "0.1.0"
