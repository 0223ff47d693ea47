"""Planted bugs in lesson 05's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
    Mutant("rts_rotates_forwards", "05.rts_theta", "convention",
           "torch.stack([k * cos, k * sin], -1), torch.stack([-k * sin, k * cos], -1)",
           "torch.stack([k * cos, -k * sin], -1), torch.stack([k * sin, k * cos], -1)"),
    Mutant("clutter_adds_up", "05.paste_clutter", "value", 'reduce="amax")', 'reduce="sum")'),
    Mutant("clutter_flat_index_source_width", "05.paste_clutter", "value",
           ") * s + paste_at[", ") * sources.shape[-1] + paste_at["),
    Mutant("clutter_forgets_the_canvas", "05.paste_clutter", "value", 'reduce="amax")',
           'reduce="amax", include_self=False)'),
    Mutant("chance_equal_logits", "05.chance_level", "value", "return float(loss),", "return float(np.log(classes)),"),
    Mutant("chance_entropy_of_held_out_labels", "05.chance_level", "value",
           "(seen[present] * learned[present].log())", "(seen[present] * seen[present].log())"),
    Mutant("chance_held_out_majority", "05.chance_level", "value", "seen[learned.argmax()]", "seen.max()"),
    Mutant("view_centre_points_away", "05.theta_statistics", "convention",
           "return zoom, rotation, theta[:, :, 2].clone()", "return zoom, rotation, -theta[:, :, 2]"),
    Mutant("stcnn_other_convention", "05.stcnn_forward", "convention",
           "classifier(F.grid_sample(x, grid, align_corners=False))",
           "classifier(F.grid_sample(x, grid, align_corners=True))"),
    Mutant("stcnn_both_align_corners_true", "05.stcnn_forward", "convention",
           "grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False)\n"
           "    return classifier(F.grid_sample(x, grid, align_corners=False))",
           "grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=True)\n"
           "    return classifier(F.grid_sample(x, grid, align_corners=True))"),
    Mutant("rotation_not_negated", "05.theta_statistics", "convention",
           "rotation = -torch.rad2deg(", "rotation = torch.rad2deg("),
    Mutant("stcnn_theta_under_no_grad", "05.stcnn_forward", "gradient",
           "    theta = head(localisation(x).flatten(1)).view(-1, 2, 3)\n",
           "    with torch.no_grad():\n        theta = head(localisation(x).flatten(1)).view(-1, 2, 3)\n"),
    Mutant("stcnn_images_mixed", "05.stcnn_forward", "value",
           "theta = head(localisation(x).flatten(1)).view(-1, 2, 3)",
           "theta = head(localisation(x).flatten(1)).reshape(2, 3, -1).permute(2, 0, 1)"),
    Mutant("stcnn_localisation_cut", "05.stcnn_forward", "gradient",
           "theta = head(localisation(x).flatten(1)).view(-1, 2, 3)",
           "theta = head(localisation(x).flatten(1).data).view(-1, 2, 3)"),
]
