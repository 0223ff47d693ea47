"""Planted bugs in lesson 05's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
    Mutant("rts_rotates_forwards", "05.rts_theta", "convention",
           "torch.stack([k * cos, k * sin], -1), torch.stack([-k * sin, k * cos], -1)",
           "torch.stack([k * cos, -k * sin], -1), torch.stack([k * sin, k * cos], -1)"),
    Mutant("clutter_adds_up", "05.paste_clutter", "value", 'reduce="amax")', 'reduce="sum")'),
    Mutant("clutter_flat_index_source_width", "05.paste_clutter", "value",
           ") * s + paste_at[", ") * sources.shape[-1] + paste_at["),
    Mutant("chance_equal_logits", "05.chance_level", "value", "return float(loss),", "return float(np.log(classes)),"),
    Mutant("chance_entropy_of_held_out_labels", "05.chance_level", "value",
           "(seen[present] * learned[present].log())", "(seen[present] * seen[present].log())"),
    Mutant("chance_held_out_majority", "05.chance_level", "value", "seen[learned.argmax()]", "seen.max()"),
    Mutant("view_centre_points_away", "05.theta_statistics", "convention",
           "return zoom, rotation, theta[:, :, 2].clone()", "return zoom, rotation, -theta[:, :, 2]"),
    Mutant("stcnn_other_convention", "05.stcnn_forward", "convention",
           "classifier(F.grid_sample(x, grid, align_corners=False))",
           "classifier(F.grid_sample(x, grid, align_corners=True))"),
    Mutant("rotation_not_negated", "05.theta_statistics", "convention",
           "rotation = -torch.rad2deg(", "rotation = torch.rad2deg("),
    Mutant("stcnn_theta_under_no_grad", "05.stcnn_forward", "gradient",
           "    theta = head(localisation(x).flatten(1)).view(-1, 2, 3)\n",
           "    with torch.no_grad():\n        theta = head(localisation(x).flatten(1)).view(-1, 2, 3)\n"),
    Mutant("stcnn_localisation_cut", "05.stcnn_forward", "gradient",
           "theta = head(localisation(x).flatten(1)).view(-1, 2, 3)",
           "theta = head(localisation(x).flatten(1).data).view(-1, 2, 3)"),
]
